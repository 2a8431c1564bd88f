"""What a pull check tries: a namespace's credentials or a credential file's, not both."""

from __future__ import annotations

import pytest

from pullkeeper.services.checks import CheckRequest, check_source
from pullkeeper.services.errors import Invalid


@pytest.mark.parametrize(
    ("cluster", "namespace", "with_file"),
    [("prod", "shop", False), ("", "", True)],
)
def test_a_namespace_or_a_file(cluster: str, namespace: str, with_file: bool) -> None:
    check_source(CheckRequest("nginx", cluster, namespace), with_file=with_file)


@pytest.mark.parametrize(
    ("cluster", "namespace", "with_file", "field", "message"),
    [
        ("", "", False, "namespace", "write the namespace the pod runs in, or upload a file"),
        ("prod", "", False, "namespace", "write the namespace the pod runs in, or upload a file"),
        ("", "shop", False, "cluster", "choose the cluster the namespace is in"),
        ("prod", "shop", True, "config", "give a cluster and namespace, or a config, not both"),
        ("", "shop", True, "config", "give a cluster and namespace, or a config, not both"),
        ("prod", "", True, "config", "give a cluster and namespace, or a config, not both"),
    ],
)
def test_what_is_missing_or_too_much_is_named(
    cluster: str, namespace: str, with_file: bool, field: str, message: str
) -> None:
    with pytest.raises(Invalid) as refused:
        check_source(CheckRequest("nginx", cluster, namespace), with_file=with_file)
    assert (refused.value.field, refused.value.message) == (field, message)
