"""The patch formats: JSON patch (RFC 6902, applied by the jsonpatch library once decoded as
the real server decodes it), JSON merge patch (RFC 7386) and Kubernetes' strategic merge patch.

Strategic merge differs from a merge patch only on lists: a list whose Go field carries
`patchStrategy:"merge"` merges item by item on its `patchMergeKey`; every other list is
replaced whole. `LIST_KEYS` below is that table for the kinds the fake serves, copied from the
field tags in k8s.io/api (PodSpec.imagePullSecrets merges by name; ServiceAccount.imagePullSecrets
is atomic there, so a patch replaces it, as on a real server).

Directives: `$patch: replace` (map or list), `$patch: delete` (map, or a list item by its merge
key), `$deleteFromPrimitiveList/F` are applied; `$setElementOrder/F` and `$retainKeys` are
accepted and dropped (item order then follows the live object, new items last; retainKeys
clears nothing).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from pullkeeper.core.go import json as gojson
from tests.kube.errors import ApiFailure, bad_request

# How the real API server answers any JSON patch that does not apply (a failed `test`, a
# missing path, an unknown or incomplete operation): 422 Invalid, with this message and empty
# details, whatever went wrong.
PATCH_REJECTED = "the server rejected our request due to an error in our request"

# --- JSON patch ------------------------------------------------------------------------------

# The operation's members kube-apiserver decodes into Go strings: another JSON type is a 400.
_STRING_MEMBERS = ("op", "path", "from")


def _go_type(value: Any) -> str:
    return "object" if isinstance(value, dict) else gojson.type_name(value)


def _decode(patch: Any) -> list[Any]:
    """The operations, decoded as kube-apiserver decodes them before applying any: a patch
    that is not a list, an operation that is not an object or one whose op, path or from is
    not a string is a 400; null is no operations; a missing value is null."""

    def wrong(found: Any, into: str) -> ApiFailure:
        return bad_request(
            f"error decoding patch: json: cannot unmarshal {_go_type(found)} into Go {into}"
        )

    if patch is None:
        return []
    if not isinstance(patch, list):
        raise wrong(patch, "value of type []handlers.jsonPatchOp")
    ops = []
    for op in patch:
        if op is not None and not isinstance(op, dict):
            raise wrong(op, "value of type handlers.jsonPatchOp")
        for member in _STRING_MEMBERS:
            value = (op or {}).get(member)
            if value is not None and not isinstance(value, str):
                raise wrong(value, f"struct field jsonPatchOp.{member} of type string")
        ops.append(op if op is None else {"value": None, **op})
    return ops


def _go_indices(doc: Any, pointer: Any) -> Any:
    """The pointer with each array index as Go's strconv.Atoi reads it ("01" is 1), which
    jsonpointer refuses (RFC 6901 forbids leading zeros) but the real server applies."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        return pointer
    tokens, node = pointer[1:].split("/"), doc
    for i, token in enumerate(tokens):
        if isinstance(node, list) and token.isdigit():
            tokens[i] = str(int(token))
            node = node[int(token)] if int(token) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(token.replace("~1", "/").replace("~0", "~"))
        else:
            break
    return "/" + "/".join(tokens)


def json_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a JSON patch (RFC 6902) to a copy of `doc`, one operation at a time so each
    one's array indices are read against the document as the operations before left it."""
    out: Any = doc
    try:
        for op in _decode(patch):
            read = op and {k: _go_indices(out, op[k]) for k in ("path", "from") if k in op}
            out = jsonpatch.JsonPatch([{**op, **read} if op else op]).apply(out)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
        raise ApiFailure(422, PATCH_REJECTED, details={}) from None
    if not isinstance(out, dict):
        raise ApiFailure(422, "the patched document is not an object")
    return out


# --- JSON merge patch ------------------------------------------------------------------------

# Hand-written: jsonpatch implements RFC 6902 only, and RFC 7386 is these few lines.


def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# --- strategic merge patch -------------------------------------------------------------------

# Hand-written: Kubernetes' own format, which no Python library implements; it needs the
# field tags of k8s.io/api, tabled below.

# Type name -> field -> (the field's type name or None, its list merge key or None).
# A list field with merge key None is atomic; a field absent from its type's table is merged
# as a plain map (dicts) or replaced (anything else).
Schema = dict[str, dict[str, tuple[str | None, str | None]]]

LIST_KEYS: Schema = {
    "ObjectMeta": {"ownerReferences": (None, "uid"), "finalizers": (None, "$primitive")},
    "PodTemplateSpec": {"metadata": ("ObjectMeta", None), "spec": ("PodSpec", None)},
    "PodSpec": {
        "containers": ("Container", "name"),
        "initContainers": ("Container", "name"),
        "ephemeralContainers": ("Container", "name"),
        "imagePullSecrets": (None, "name"),
        "volumes": (None, "name"),
        "hostAliases": (None, "ip"),
    },
    "Container": {
        "env": (None, "name"),
        "ports": (None, "containerPort"),
        "volumeMounts": (None, "mountPath"),
        "volumeDevices": (None, "devicePath"),
    },
    "WorkloadSpec": {"template": ("PodTemplateSpec", None)},
    "WorkloadStatus": {"conditions": (None, "type")},
    "PodStatus": {"conditions": (None, "type")},
    "Pod": {
        "metadata": ("ObjectMeta", None),
        "spec": ("PodSpec", None),
        "status": ("PodStatus", None),
    },
    "Deployment": {
        "metadata": ("ObjectMeta", None),
        "spec": ("WorkloadSpec", None),
        "status": ("WorkloadStatus", None),
    },
    "ReplicaSet": {
        "metadata": ("ObjectMeta", None),
        "spec": ("WorkloadSpec", None),
        "status": ("WorkloadStatus", None),
    },
    # imagePullSecrets is deliberately absent: atomic in k8s.io/api core/v1 ServiceAccount.
    "ServiceAccount": {"metadata": ("ObjectMeta", None), "secrets": (None, "name")},
}
GENERIC = {"metadata": ("ObjectMeta", None)}


def _field(type_name: str | None, key: str) -> tuple[str | None, str | None]:
    if type_name is None:
        return (None, None)
    return LIST_KEYS.get(type_name, GENERIC).get(key, (None, None))


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$") and v is not None
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(live: Any, patch: list[Any], item_type: str | None, key: str | None) -> list[Any]:
    if key is None:
        return [_strip_directives(v) for v in patch if not _is_directive_item(v)]
    if key == "$primitive":
        merged = list(live) if isinstance(live, list) else []
        merged += [v for v in patch if v not in merged]
        return merged
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return [_strip_directives(v) for v in patch if not _is_directive_item(v)]
    merged = [copy.deepcopy(v) for v in live] if isinstance(live, list) else []
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {key}")
        index = next(
            (i for i, v in enumerate(merged) if isinstance(v, dict) and v.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(_strip_directives(item))
        else:
            merged[index] = strategic_merge(merged[index], item, item_type)
    return merged


def _is_directive_item(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$patch"}


def strategic_merge(live: Any, patch: Any, type_name: str | None) -> Any:
    """Apply a strategic merge patch `patch` to `live`, typed by a LIST_KEYS type name."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip_directives(patch)
    out = copy.deepcopy(live) if isinstance(live, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys: see the module docstring
        sub_type, merge_key = _field(type_name, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, sub_type, merge_key)
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value, sub_type)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = value
    return out


# --- managed fields --------------------------------------------------------------------------


def field_set(value: Any) -> dict[str, Any]:
    """A FieldsV1 set of the map keys in `value`; lists count as one field each (no `k:`/`v:`
    item keys, a simplification the fake's server-side apply documents)."""
    if not isinstance(value, dict):
        return {}
    return {f"f:{k}": field_set(v) for k, v in value.items() if not k.startswith("$")}
