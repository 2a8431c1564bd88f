"""What the real server rejects, with its wording.

Two stages, as on the real server: decoding (a Secret's `data` value that is not base64 fails
there, so the answer is 400 BadRequest, not 422), then validation (422 Invalid, one cause per
field). Only the rules below are checked; anything else a real server would refuse passes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from pullkeeper.core.go import json as gojson
from tests.kube.errors import ApiFailure, invalid
from tests.kube.resources import Resource

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
_LABEL_RE = re.compile(rf"^{DNS1123_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{DNS1123_SUBDOMAIN}$")
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_RE = re.compile(rf"^{_QUALIFIED_NAME}$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{DNS1123_SUBDOMAIN}')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    f"used for validation is '{DNS1123_LABEL}')"
)
MAX_SECRET_BYTES = 1024 * 1024

# Secret types whose data must hold these keys (k8s.io/kubernetes pkg/apis/core/validation).
REQUIRED_SECRET_KEYS = {
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
    "kubernetes.io/dockercfg": ".dockercfg",
}

Cause = tuple[str, str, str]


def check_decodable(res: Resource, obj: dict[str, Any]) -> None:
    """400 for what fails to decode into the Go type; the real message names the byte."""
    for field in ("data", "binaryData"):
        if res.plural not in ("secrets", "configmaps") or (
            res.plural == "configmaps" and field == "data"
        ):
            continue
        values = obj.get(field) or {}
        if not isinstance(values, dict):
            raise ApiFailure(
                400,
                f'{res.kind} in version "v1" cannot be handled as a '
                f"{res.kind}: {field} must be an object",
            )
        for key, value in values.items():
            try:
                if not isinstance(value, str):
                    raise binascii.Error("not a string")
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ApiFailure(
                    400,
                    f'{res.kind} in version "v1" cannot be handled as a {res.kind}: '
                    f"illegal base64 data at input byte 0 (key {key!r})",
                ) from None


def _name_causes(res: Resource, name: str) -> list[Cause]:
    if res.plural == "events":
        bad = name in (".", "..") or "/" in name or "%" in name
        return (
            [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: \"{name}\": may not contain '/' or '%'",
                )
            ]
            if bad
            else []
        )
    if res.plural == "namespaces":
        if len(name) > 63:
            return [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": must be no more than 63 characters',
                )
            ]
        if not _LABEL_RE.match(name):
            return [("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {LABEL_MSG}')]
        return []
    if len(name) > 253:
        return [
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be no more than 253 characters',
            )
        ]
    if not _SUBDOMAIN_RE.match(name):
        return [("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {SUBDOMAIN_MSG}')]
    return []


def _label_causes(field: str, labels: Any, check_values: bool) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [(field, "FieldValueInvalid", "Invalid value: must be a map of strings")]
    causes: list[Cause] = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        ok = (
            bool(name)
            and len(name) <= 63
            and bool(_QUALIFIED_RE.match(name))
            and (not prefix or (len(prefix) <= 253 and bool(_SUBDOMAIN_RE.match(prefix))))
        )
        if not ok:
            causes.append(
                (
                    field,
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": name part must '
                    "consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(value, str):
            causes.append((f"{field}[{key}]", "FieldValueInvalid", "Invalid value: not a string"))
        elif check_values and value and (len(value) > 63 or not _QUALIFIED_RE.match(value)):
            causes.append(
                (
                    field,
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label '
                    "must be an empty string or consist of alphanumeric characters, '-', "
                    "'_' or '.', and must start and end with an alphanumeric character",
                )
            )
    return causes


def _secret_causes(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    data = obj.get("data") or {}
    total = 0
    for key, value in data.items():
        if not _CONFIG_KEY_RE.match(key):
            causes.append(
                (
                    f"data[{key}]",
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": a valid '
                    "config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        total += len(base64.b64decode(value))
    if total > MAX_SECRET_BYTES:
        causes.append(
            (
                "data",
                "FieldValueTooLong",
                f"Too long: may not be more than {MAX_SECRET_BYTES} bytes",
            )
        )
    kind = obj.get("type") or "Opaque"
    required = REQUIRED_SECRET_KEYS.get(kind)
    if required is not None:
        if required not in data:
            causes.append((f"data[{required}]", "FieldValueRequired", "Required value"))
        else:
            try:
                # As the real server decodes it: Go's JSON into a map (null decodes too).
                config = gojson.loads(base64.b64decode(data[required]))
                if not isinstance(config, gojson.Members) and config is not None:
                    raise ValueError(
                        f"json: cannot unmarshal {gojson.type_name(config)} into Go value of "
                        "type map[string]interface {}"
                    )
            except ValueError as e:
                causes.append(
                    (
                        f"data[{required}]",
                        "FieldValueInvalid",
                        f'Invalid value: "<secret contents redacted>": {e}',
                    )
                )
    if kind == "kubernetes.io/basic-auth" and not ({"username", "password"} & set(data)):
        causes.append(("data[username]", "FieldValueRequired", "Required value"))
    if kind == "kubernetes.io/tls":
        causes += [
            (f"data[{k}]", "FieldValueRequired", "Required value")
            for k in ("tls.crt", "tls.key")
            if k not in data
        ]
    if old is not None:
        old_type = old.get("type") or "Opaque"
        if kind != old_type:
            causes.append(
                ("type", "FieldValueInvalid", f'Invalid value: "{kind}": field is immutable')
            )
        if old.get("immutable") and (data != (old.get("data") or {}) or not obj.get("immutable")):
            causes.append(
                ("data", "Forbidden", "Forbidden: field is immutable when `immutable` is set")
            )
    return causes


def _pod_spec_causes(prefix: str, spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [(prefix, "FieldValueRequired", "Required value")]
    containers = spec.get("containers")
    if not containers:
        return [(f"{prefix}.containers", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append(
                (f"{prefix}.containers[{i}].name", "FieldValueRequired", "Required value")
            )
        if not isinstance(c, dict) or not c.get("image"):
            causes.append(
                (f"{prefix}.containers[{i}].image", "FieldValueRequired", "Required value")
            )
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        if not isinstance(ref, dict) or not ref.get("name"):
            causes.append(
                (f"{prefix}.imagePullSecrets[{i}].name", "FieldValueRequired", "Required value")
            )
    return causes


def _workload_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "FieldValueRequired", "Required value")]
    selector = (spec.get("selector") or {}).get("matchLabels")
    if not spec.get("selector"):
        return [("spec.selector", "FieldValueRequired", "Required value")]
    template = spec.get("template") or {}
    causes = _pod_spec_causes("spec.template.spec", template.get("spec"))
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`",
            )
        )
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    return causes


def validate(res: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Raise 422 Invalid when `obj` (after defaulting) breaks one of the rules; `old` on updates."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[Cause] = []
    if not name:
        causes.append(
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        )
    else:
        causes += _name_causes(res, name)
    causes += _label_causes("metadata.labels", meta.get("labels"), check_values=True)
    causes += _label_causes("metadata.annotations", meta.get("annotations"), check_values=False)
    if res.plural == "secrets":
        causes += _secret_causes(obj, old)
    elif res.plural == "configmaps":
        causes += [
            (
                f"data[{k}]",
                "FieldValueInvalid",
                f'Invalid value: "{k}": a valid config key '
                "must consist of alphanumeric characters, '-', '_' or '.'",
            )
            for k in (obj.get("data") or {})
            if not _CONFIG_KEY_RE.match(k)
        ]
    elif res.plural == "pods":
        causes += _pod_spec_causes("spec", obj.get("spec"))
    elif res.plural in ("deployments", "replicasets"):
        causes += _workload_causes(obj)
    elif res.plural == "events" and not obj.get("involvedObject"):
        causes.append(("involvedObject", "FieldValueRequired", "Required value"))
    if causes:
        raise invalid(res, name, causes)
