"""kubectl-compatible Secrets, the kubelet's Secret pairing, names, and pull-policy defaults."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pullkeeper.core import manifest
from pullkeeper.core.names import InvalidName, validate_label, validate_subdomain
from pullkeeper.core.pullpolicy import (
    ALWAYS,
    IF_NOT_PRESENT,
    NEVER,
    InvalidPullPolicy,
    default_pull_policy,
    effective_pull_policy,
)
from pullkeeper.core.secret import (
    Metadata,
    SecretError,
    docker_registry_secret,
    read_secret,
)

DIGEST = "sha256:" + "a" * 64


def test_docker_registry_secret_shape_is_kubectls() -> None:
    obj = docker_registry_secret("regcred", username="u", password="p", metadata=Metadata("team-a"))
    assert list(obj) == ["kind", "apiVersion", "metadata", "data", "type"]
    assert obj["metadata"] == {"name": "regcred", "namespace": "team-a", "creationTimestamp": None}
    assert obj["type"] == "kubernetes.io/dockerconfigjson"
    payload = base64.b64decode(obj["data"][".dockerconfigjson"])
    assert payload == (
        b'{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p","auth":"dTpw"}}}'
    )


@pytest.mark.parametrize(
    ("username", "password", "server"),
    [("", "p", "s"), ("u", "", "s"), ("u", "p", "")],
)
def test_docker_registry_secret_needs_all_three(username: str, password: str, server: str) -> None:
    with pytest.raises(SecretError, match="--docker-username, --docker-password and"):
        docker_registry_secret("x", server=server, username=username, password=password)


@pytest.mark.parametrize(
    ("username", "says"),
    [("u:x", "cannot contain ':'"), ("u\n", "a line feed"), ("u\r", "a carriage return")],
)
def test_docker_registry_secret_refuses_what_auth_cannot_carry(username: str, says: str) -> None:
    # kubectl takes these, and the kubelet then logs in as someone else (or not at all).
    with pytest.raises(SecretError, match=f"^--docker-username: .*{says}"):
        docker_registry_secret("x", username=username, password="p")


@pytest.mark.parametrize("name", ["UPPER", "-x", "a_b", "x" * 254])
def test_secret_names_follow_the_api_server(name: str) -> None:
    with pytest.raises(InvalidName, match=r"metadata\.name: Invalid value"):
        docker_registry_secret(name, username="u", password="p")


def test_an_empty_name_is_kubectls_error_before_the_name_rules() -> None:
    with pytest.raises(SecretError, match=r"^name must be specified$"):
        docker_registry_secret("", username="u", password="p")


def _secret(type_: str | None, data: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}}
    if type_ is not None:
        obj["type"] = type_
    obj["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
    obj.update(extra)
    return obj


CONFIG = b'{"auths":{"quay.io":{"username":"u","password":"p"}}}'
LEGACY = b'{"quay.io":{"username":"u","password":"p"}}'


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (_secret(None, {".dockerconfigjson": CONFIG}), "type 'Opaque' is not a registry"),
        (_secret("Opaque", {".dockerconfigjson": CONFIG}), "type 'Opaque' is not a registry"),
        (
            _secret("kubernetes.io/dockerconfigjson", {".dockercfg": LEGACY}),
            "needs a non-empty data key .dockerconfigjson",
        ),
        (
            _secret("kubernetes.io/dockercfg", {".dockerconfigjson": CONFIG}),
            "needs a non-empty data key .dockercfg",
        ),
        (_secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b""}), "non-empty"),
        ({**_secret("kubernetes.io/dockercfg", {}), "kind": "ConfigMap"}, "kind is 'ConfigMap'"),
        (
            {**_secret("kubernetes.io/dockerconfigjson", {}), "data": {".dockerconfigjson": "!!"}},
            "data['.dockerconfigjson'] is not valid base64",
        ),
        (
            _secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b"{"}),
            "data['.dockerconfigjson']: not valid JSON",
        ),
        (
            _secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": LEGACY}),
            "",
        ),
    ],
)
def test_read_secret_pairs_type_and_key_as_the_kubelet(obj: dict[str, Any], message: str) -> None:
    if not message:
        # A legacy payload under the new key: the kubelet reads "auths" and finds none.
        assert read_secret(obj).config.auths == {}
        return
    with pytest.raises(SecretError) as e:
        read_secret(obj)
    assert message in str(e.value)


def test_read_secret_both_types_and_string_data() -> None:
    new = read_secret(_secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": CONFIG}))
    old = read_secret(_secret("kubernetes.io/dockercfg", {".dockercfg": LEGACY}))
    assert new.config.auths == old.config.auths
    assert new.config.auths["quay.io"].password == "p"
    by_string = read_secret(
        _secret(
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": b"{}"},
            stringData={".dockerconfigjson": CONFIG.decode()},
        )
    )
    assert by_string.config.auths == new.config.auths


def test_manifest_round_trip_and_kubectl_yaml_style() -> None:
    obj = docker_registry_secret("regcred", username="u", password="p")
    text = manifest.to_yaml(obj)
    assert text.splitlines()[0] == "apiVersion: v1"
    assert "creationTimestamp: null" in text
    assert manifest.load_documents(text) == [obj]
    assert json.loads(manifest.to_json(obj)) == obj
    two = manifest.load_documents(text + "---\n" + text + "---\n")
    assert len(two) == 2
    listed = manifest.load_documents(json.dumps({"kind": "List", "items": [obj, obj]}))
    assert listed == [obj, obj]
    with pytest.raises(manifest.ManifestError, match="not valid YAML or JSON at line"):
        manifest.load_documents("a: [")


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", ALWAYS),
        ("nginx:latest", ALWAYS),
        ("nginx:1.25", IF_NOT_PRESENT),
        ("nginx:Latest", IF_NOT_PRESENT),
        ("nginx@" + DIGEST, IF_NOT_PRESENT),
        ("nginx:latest@" + DIGEST, ALWAYS),
        ("nginx:1.25@" + DIGEST, IF_NOT_PRESENT),
        ("quay.io/team/app", ALWAYS),
        ("localhost:5000/app", ALWAYS),
        ("localhost:5000", IF_NOT_PRESENT),
        ("", IF_NOT_PRESENT),
        ("Not A Valid Image", IF_NOT_PRESENT),
    ],
)
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_effective_pull_policy() -> None:
    assert effective_pull_policy("nginx:1", NEVER) == NEVER
    assert effective_pull_policy("nginx:1", None) == IF_NOT_PRESENT
    assert effective_pull_policy("nginx:1", "") == IF_NOT_PRESENT
    assert effective_pull_policy("nginx:1", NEVER, always_pull=True) == ALWAYS
    assert effective_pull_policy("nginx", IF_NOT_PRESENT) == IF_NOT_PRESENT
    with pytest.raises(InvalidPullPolicy, match='Unsupported value: "always"'):
        effective_pull_policy("nginx", "always")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("a.b-c", True),
        ("0abc", True),
        ("a" * 253, True),
        ("a" * 254, False),
        ("A", False),
        ("a..b", False),
        ("a.", False),
        ("a_b", False),
    ],
)
def test_subdomain_names(value: str, ok: bool) -> None:
    if ok:
        validate_subdomain(value)
    else:
        with pytest.raises(InvalidName):
            validate_subdomain(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("team-a", True), ("a" * 63, True), ("a" * 64, False), ("a.b", False), ("-a", False)],
)
def test_namespace_names(value: str, ok: bool) -> None:
    if ok:
        validate_label(value)
    else:
        with pytest.raises(InvalidName, match=r"metadata\.namespace"):
            validate_label(value)
