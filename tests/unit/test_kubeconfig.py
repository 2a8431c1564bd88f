"""A kubeconfig's contexts, and what is wrong with a file that is not a usable one: said in
words, never quoting the file (it may hold tokens and keys)."""

from __future__ import annotations

import pytest
import yaml

from pullkeeper.core.kubeconfig import Contexts, KubeconfigError, contexts_of, files_named

TOKEN = "s3cret-token-never-quoted"


def _config(**changes: object) -> str:
    doc: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://10.0.0.1:6443"}},
            {"name": "c2", "cluster": {"server": "https://10.0.0.2:6443"}},
        ],
        "users": [{"name": "u1", "user": {"token": TOKEN}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "c1", "user": "u1"}},
            {"name": "two", "context": {"cluster": "c2", "user": "u1", "namespace": "x"}},
        ],
        "current-context": "two",
    }
    doc.update(changes)
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_config(), Contexts(("one", "two"), "two")),
        (_config(**{"current-context": ""}), Contexts(("one", "two"), "one")),
        (
            _config(
                contexts=[{"name": "only", "context": {"cluster": "c1", "user": "u1"}}],
                **{"current-context": None},
            ),
            Contexts(("only",), "only"),
        ),
    ],
)
def test_contexts_and_the_default(text: str, expected: Contexts) -> None:
    assert contexts_of(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        (f"users: [{{token: {TOKEN}}}\n  bad: [", "the file is not YAML: "),
        ("- a\n- b\n", "the file is YAML but not a kubeconfig (no clusters, users, contexts)"),
        (_config(kind="Secret"), "the file is a Secret, not a kubeconfig (kind Config)"),
        (_config(contexts=[]), "the kubeconfig has no contexts; it needs at least one"),
        (_config(contexts="one"), "its 'contexts' is not a list"),
        (_config(contexts=[{"context": {}}]), "an entry of its 'contexts' has no name"),
        (
            _config(contexts=[{"name": "x", "context": {"user": "u1"}}]),
            "context 'x' names no cluster",
        ),
        (
            _config(contexts=[{"name": "x", "context": {"cluster": "c9", "user": "u1"}}]),
            "context 'x' names cluster 'c9', which the file lacks",
        ),
        (
            _config(contexts=[{"name": "x", "context": {"cluster": "c1"}}]),
            "context 'x' names no user",
        ),
        (
            _config(contexts=[{"name": "x", "context": {"cluster": {"a": 1}, "user": "u1"}}]),
            "context 'x' names no cluster",
        ),
        ("created: 2001-02-30\n", "the file is not YAML a kubeconfig can be read from"),
        (
            _config(contexts=[{"name": "x", "context": {"cluster": "c1", "user": "u9"}}]),
            "context 'x' names user 'u9', which the file lacks",
        ),
        (
            _config(clusters=[{"name": "c1", "cluster": {}}, {"name": "c2", "cluster": {}}]),
            "cluster 'c1' of the file has no server address",
        ),
        (
            _config(**{"current-context": "three"}),
            "its current-context 'three' is not one of its contexts (one, two)",
        ),
    ],
)
def test_what_is_wrong_is_said_without_the_file_s_secrets(text: str, message: str) -> None:
    with pytest.raises(KubeconfigError) as caught:
        contexts_of(text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_yaml_error_names_its_line_not_its_text() -> None:
    text = f"users:\n- name: u\n  user: {{token: {TOKEN}\n"
    with pytest.raises(KubeconfigError) as caught:
        contexts_of(text)
    assert "line " in str(caught.value) and TOKEN not in str(caught.value)


def test_fields_naming_files_are_found_for_the_chosen_context() -> None:
    text = _config(
        clusters=[
            {"name": "c1", "cluster": {"server": "https://a", "certificate-authority": "/x/ca"}},
            {
                "name": "c2",
                "cluster": {"server": "https://b", "certificate-authority-data": "Q0E="},
            },
        ],
        users=[
            {"name": "u1", "user": {"client-certificate": "u.crt", "client-key": "u.key"}},
        ],
    )
    assert files_named(text, "one") == ["certificate-authority", "client-certificate", "client-key"]
    assert files_named(text, "two") == ["client-certificate", "client-key"]
    assert files_named(_config(), "one") == []
