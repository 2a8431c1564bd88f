"""A kubeconfig's contexts, and what is wrong with a file that is not a usable one: said in
words, never quoting the file (it may hold tokens and keys)."""

from __future__ import annotations

import base64

import pytest
import yaml

from pullkeeper.core.kubeconfig import Contexts, KubeconfigError, contexts_of, minified, refused

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


def test_what_the_server_must_not_use_is_found_in_every_user_and_cluster() -> None:
    """Not only the current context's: a later context switch must not reach any of these."""
    pem = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    text = _config(
        clusters=[
            {"name": "c1", "cluster": {"server": "https://a", "certificate-authority": "/x/ca"}},
            {
                "name": "c2",
                "cluster": {
                    "server": "https://b",
                    "certificate-authority-data": pem.decode(),
                    "proxy-url": "http://proxy:3128",
                },
            },
            {
                "name": "c3",
                "cluster": {"server": "https://c", "certificate-authority-data": "Q0E="},
            },
        ],
        users=[
            {"name": "u1", "user": {"token": TOKEN}},
            {"name": "runs", "user": {"exec": {"command": "/bin/touch", "args": ["/tmp/x"]}}},
            {"name": "plug", "user": {"auth-provider": {"name": "gcp"}}},
            {"name": "files", "user": {"client-certificate": "u.crt", "client-key": "u.key"}},
            {"name": "tok", "user": {"tokenFile": "/var/run/token"}},
        ],
    )
    assert refused(text) == [
        "cluster 'c1' has certificate-authority (names a file)",
        "cluster 'c2' has proxy-url (names a proxy, which pullkeeper does not use)",
        "cluster 'c3' has a certificate-authority-data that is not base64 of PEM data",
        "user 'runs' has exec (runs a command)",
        "user 'plug' has auth-provider (calls an auth plug-in)",
        "user 'files' has client-certificate (names a file)",
        "user 'files' has client-key (names a file)",
        "user 'tok' has tokenFile (names a file)",
    ]
    assert refused(_config()) == []


def test_minified_keeps_only_the_chosen_context_its_cluster_and_user() -> None:
    text = _config(
        users=[
            {"name": "u1", "user": {"token": TOKEN}},
            {"name": "u2", "user": {"token": "other-token"}},
        ],
        contexts=[
            {"name": "one", "context": {"cluster": "c1", "user": "u1"}},
            {"name": "two", "context": {"cluster": "c2", "user": "u2"}},
        ],
    )
    kept = minified(text, "one")
    assert kept == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u1", "user": {"token": TOKEN}}],
        "contexts": [{"name": "one", "context": {"cluster": "c1", "user": "u1"}}],
        "current-context": "one",
    }
    assert "other-token" not in str(kept)
