"""Decoding of the Kubernetes protobuf request bodies kubectl's typed clients send.

`kubectl create namespace|secret|configmap|serviceaccount` post `application/vnd.kubernetes.
protobuf`: the magic `k8s\\0`, then a runtime.Unknown {typeMeta, raw} whose raw bytes are the
object. Only the messages of those four kinds (and the ObjectMeta fields a client sets) are
known here, with field numbers from k8s.io/api's generated.proto; anything else is 415.
Responses are always JSON, which every client accepts.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.kube.errors import ApiFailure

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type); type is a scalar kind or a message name,
# "[]" prefix for repeated, "map:" for map<string, string|bytes>.
MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        6: ("resourceVersion", "string"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        13: ("ownerReferences", "[]OwnerReference"),
        14: ("finalizers", "[]string"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "[]ObjectReference"),
        3: ("imagePullSecrets", "[]LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string")},
    "LocalObjectReference": {1: ("name", "string")},
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ApiFailure(400, "truncated protobuf body")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ApiFailure(400, f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "string":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "bytes":
        return base64.b64encode(value).decode() if isinstance(value, bytes) else ""
    if kind == "bool":
        return bool(value)
    return int(value) if isinstance(value, int) else int.from_bytes(value, "little")


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue  # a field the fake does not need
        key, kind = schema[number]
        if kind.startswith("map:"):
            entry = dict(_fields(value if isinstance(value, bytes) else b""))
            k = _scalar("string", entry.get(1, b""))
            out.setdefault(key, {})[k] = _scalar(kind[4:], entry.get(2, b""))
        elif kind.startswith("[]"):
            item = kind[2:]
            parsed = (
                decode_message(item, value if isinstance(value, bytes) else b"")
                if item in MESSAGES
                else _scalar(item, value)
            )
            out.setdefault(key, []).append(parsed)
        elif kind in MESSAGES:
            out[key] = decode_message(kind, value if isinstance(value, bytes) else b"")
        else:
            out[key] = _scalar(kind, value)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf envelope as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise ApiFailure(400, "protobuf body without the k8s magic prefix")
    envelope = decode_message("Unknown", body[len(MAGIC) :])
    type_meta = envelope.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in ("Namespace", "Secret", "ConfigMap", "ServiceAccount"):
        raise ApiFailure(415, f"the fake decodes no protobuf {kind or 'object'}; send JSON")
    raw = base64.b64decode(envelope.get("raw", ""))
    obj = decode_message(kind, raw)
    return {"kind": kind, "apiVersion": type_meta.get("apiVersion", "v1"), **obj}
