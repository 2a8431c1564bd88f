"""The patch formats: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes'
strategic merge patch.

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

from tests.kube.errors import ApiFailure, bad_request

# How the real API server answers any JSON patch that does not apply (a failed `test`, a
# missing path): 422 Invalid, with this message and empty details, whatever went wrong.
PATCH_REJECTED = "the server rejected our request due to an error in our request"

# --- JSON patch ------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiFailure(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ApiFailure(422, PATCH_REJECTED, details={})
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    node, last = _parent(doc, parts)
    if isinstance(node, dict) and last in node:
        return node[last]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node[int(last)]
    raise ApiFailure(422, PATCH_REJECTED, details={})


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    node, last = _parent(doc, parts)
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list):
        if last == "-":
            node.append(value)
        elif last.isdigit() and int(last) <= len(node):
            node.insert(int(last), value)
        else:
            raise ApiFailure(422, PATCH_REJECTED, details={})
    else:
        raise ApiFailure(422, PATCH_REJECTED, details={})
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    node, last = _parent(doc, parts)
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]
    else:
        raise ApiFailure(422, PATCH_REJECTED, details={})
    return doc


def json_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    out: Any = copy.deepcopy(doc)
    for op in patch:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            out = _add(out, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            out = _remove(out, path)
        elif kind == "replace":
            _get(out, path)  # must exist
            out = _remove(out, path) if _pointer(path) else out
            out = _add(out, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(out, op["from"]))
            if kind == "move":
                out = _remove(out, op["from"])
            out = _add(out, path, value)
        elif kind == "test":
            if _get(out, path) != op.get("value"):
                raise ApiFailure(422, PATCH_REJECTED, details={})
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    if not isinstance(out, dict):
        raise ApiFailure(422, "the patched document is not an object")
    return out


# --- JSON merge patch ------------------------------------------------------------------------


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
