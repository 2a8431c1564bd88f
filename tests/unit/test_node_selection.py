"""Node selectors follow Kubernetes' label rules (core.names) and say what is wrong in words."""

from __future__ import annotations

import pytest

from pullkeeper.core.nodeconfig.profile import ProfileError
from pullkeeper.core.nodeconfig.selection import check_selector, labels_from


@pytest.mark.parametrize(
    "selector",
    [
        {"pool": "gpu"},
        {"example.com/pool": ""},
        {"node-role.kubernetes.io/worker": "true"},
        {"a" * 63: "b" * 63},
        {"K.8_s": "V-1"},
    ],
)
def test_kubernetes_labels_are_taken_sorted(selector: dict[str, str]) -> None:
    assert check_selector(selector) == dict(sorted(selector.items()))


@pytest.mark.parametrize(
    ("selector", "words"),
    [
        ({"Example.com/pool": "x"}, "the prefix before / must be a DNS subdomain"),
        ({"a/b/c": "x"}, "the prefix before / must be a DNS subdomain"),
        ({"-pool": "x"}, "is not a label key"),
        ({"a" * 64: "x"}, "is not a label key"),
        ({"pool": "-gpu"}, "is not a label value"),
        ({"pool": "g" * 64}, "is not a label value"),
        ({"pool": 3}, "keys and values are strings"),
    ],
)
def test_what_kubernetes_refuses_is_refused_in_words(selector: object, words: str) -> None:
    with pytest.raises(ProfileError) as e:
        check_selector(selector)
    assert words in str(e.value)
    assert "regex" not in str(e.value)


def test_labels_from_key_value_items() -> None:
    assert labels_from(["pool=gpu,zone=a", "tier="]) == {"pool": "gpu", "tier": "", "zone": "a"}
    with pytest.raises(ProfileError, match="is not KEY=VALUE"):
        labels_from(["pool"])
