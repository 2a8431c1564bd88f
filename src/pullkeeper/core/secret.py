"""Registry-credential Secrets: built as kubectl builds them, read as the kubelet reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pullkeeper.core import dockerconfig
from pullkeeper.core.dockerconfig import AuthEntry, DockerConfig, DockerConfigError
from pullkeeper.core.go import base64 as gob64
from pullkeeper.core.go import json as gojson
from pullkeeper.core.names import (
    validate_annotations,
    validate_label,
    validate_labels,
    validate_subdomain,
)

TYPE_DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
TYPE_DOCKERCFG = "kubernetes.io/dockercfg"
KEY_DOCKERCONFIGJSON = ".dockerconfigjson"
KEY_DOCKERCFG = ".dockercfg"
# The data key the kubelet reads for each type; any other pairing it ignores.
DATA_KEY = {TYPE_DOCKERCONFIGJSON: KEY_DOCKERCONFIGJSON, TYPE_DOCKERCFG: KEY_DOCKERCFG}
DEFAULT_SERVER = "https://index.docker.io/v1/"
# kubectl's own messages, word for word (tests/integration/test_kubectl_compat.py holds each
# to the real kubectl's).
NAME_REQUIRED = "name must be specified"
MISSING_REGISTRY_FIELDS = (
    "either --from-file or the combination of --docker-username, --docker-password "
    "and --docker-server is required"
)
KUBECTL_MESSAGES = (NAME_REQUIRED, MISSING_REGISTRY_FIELDS)


class SecretError(ValueError):
    """A Secret that is not a usable registry credential, and why."""


class IgnoredSecret(SecretError):
    """A Secret the kubelet passes over without an error: not of a registry type, or without
    its data key. A pod naming it pulls as if it named nothing."""


@dataclass(frozen=True, slots=True)
class Metadata:
    """Where a Secret goes and what it carries besides its data: kubectl's "customize it
    before storing it" (a namespace, labels, annotations)."""

    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """InvalidName, with the API server's words, for what it would refuse."""
        if self.namespace:
            validate_label(self.namespace)
        validate_labels(dict(self.labels))
        validate_annotations(dict(self.annotations))


def _secret(name: str, meta: Metadata, type_: str, key: str, payload: bytes) -> dict[str, Any]:
    if not name:
        raise SecretError(NAME_REQUIRED)  # as kubectl says it, before the name's rules
    validate_subdomain(name)
    meta.validate()
    metadata: dict[str, Any] = {"name": name}
    if meta.namespace:
        metadata["namespace"] = meta.namespace
    metadata["creationTimestamp"] = None
    # After creationTimestamp, keys sorted: as Go writes ObjectMeta and its maps.
    if meta.labels:
        metadata["labels"] = dict(sorted(meta.labels.items()))
    if meta.annotations:
        metadata["annotations"] = dict(sorted(meta.annotations.items()))
    # Field order as kubectl prints it.
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": metadata,
        "data": {key: gob64.std_encode(payload)},
        "type": type_,
    }


def docker_registry_secret(
    name: str,
    *,
    server: str = DEFAULT_SERVER,
    username: str,
    password: str,
    email: str = "",
    metadata: Metadata | None = None,
) -> dict[str, Any]:
    """What `kubectl create secret docker-registry` produces, payload byte for byte."""
    if not (username and password and server):
        raise SecretError(MISSING_REGISTRY_FIELDS)
    # kubectl takes such a user name, but the Secret would not log in as it.
    try:
        dockerconfig.check_username(username)
    except dockerconfig.InvalidUsername as e:
        raise SecretError(f"--docker-username: {e}") from None
    payload = dockerconfig.encode_config_json({server: AuthEntry(username, password, email)})
    return _secret(
        name, metadata or Metadata(), TYPE_DOCKERCONFIGJSON, KEY_DOCKERCONFIGJSON, payload
    )


def config_secret(
    name: str, config: DockerConfig, metadata: Metadata | None = None
) -> dict[str, Any]:
    """A kubernetes.io/dockerconfigjson Secret holding every registry of a credential file."""
    payload = dockerconfig.encode_config_json(config.auths, config.http_headers)
    return _secret(
        name, metadata or Metadata(), TYPE_DOCKERCONFIGJSON, KEY_DOCKERCONFIGJSON, payload
    )


@dataclass(frozen=True, slots=True)
class SecretPayload:
    """The credential file inside a Secret, as the kubelet would read it."""

    name: str
    type: str
    config: DockerConfig


def _data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    raw = obj.get("data") or {}
    if not isinstance(raw, Mapping):
        raise SecretError("data must be a mapping of keys to base64 values")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise SecretError(f"data[{key!r}] must be a base64 string")
        try:
            data[str(key)] = gob64.std_decode(value)
        except gob64.CorruptInput as e:
            raise SecretError(f"data[{key!r}] is not valid base64: {e}") from None
    # The API server merges stringData over data on write.
    string_data = obj.get("stringData") or {}
    if not isinstance(string_data, Mapping):
        raise SecretError("stringData must be a mapping of keys to strings")
    for key, value in string_data.items():
        if not isinstance(value, str):
            raise SecretError(f"stringData[{key!r}] must be a string")
        # An escaped lone surrogate reaches the API server as U+FFFD.
        data[str(key)] = gojson.replace_surrogates(value).encode("utf-8")
    return data


def read_secret(obj: Mapping[str, Any]) -> SecretPayload:
    """The credential file a Secret carries, or why the kubelet would ignore or refuse it."""
    kind = obj.get("kind")
    if kind != "Secret":
        raise SecretError(f"kind is {kind!r}, not 'Secret'")
    metadata = obj.get("metadata")
    name = str(metadata.get("name", "")) if isinstance(metadata, Mapping) else ""
    type_ = obj.get("type") or "Opaque"
    key = DATA_KEY.get(type_) if isinstance(type_, str) else None
    if key is None:
        raise IgnoredSecret(
            f"type {type_!r} is not a registry credential; the kubelet only reads "
            f"{TYPE_DOCKERCONFIGJSON} (data key {KEY_DOCKERCONFIGJSON}) and "
            f"{TYPE_DOCKERCFG} (data key {KEY_DOCKERCFG})"
        )
    payload = _data(obj).get(key, b"")
    if not payload:
        raise IgnoredSecret(
            f"type {type_} needs a non-empty data key {key}; the kubelet ignores this Secret"
        )
    try:
        if type_ == TYPE_DOCKERCONFIGJSON:
            config = dockerconfig.parse_config_json(payload)
        else:
            config = dockerconfig.parse_dockercfg(payload)
    except DockerConfigError as e:
        raise SecretError(f"data[{key!r}]: {e}") from None
    return SecretPayload(name, type_, config)
