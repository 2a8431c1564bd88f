"""Admission decisions on a pod spec: the JSONPatch that gives it its pull credentials and
policy, and the policy's verdicts on its images.

Pure: the caller supplies, for the pod's namespace, which Secrets the kubelet
would use for an image and the effective policy. The patch keeps everything
the object had: every imagePullSecrets entry and its order, every field not
named here. Applied twice (reinvocation), it changes nothing the second time.

Every field read here must have the JSON type the Kubernetes API gives it
(core/v1 PodSpec, Container, LocalObjectReference, ObjectMeta); an object where
one does not is Malformed, with the field's path, never guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pullkeeper.core import imagepolicy
from pullkeeper.core.policy import Policy

ORIGINAL_IMAGES = "pullkeeper.io/original-images"
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Where the pod spec and its metadata are, per kind (JSON pointers).
POD_PATHS = {
    "Pod": ("/spec", "/metadata"),
    "Deployment": ("/spec/template/spec", "/spec/template/metadata"),
    "StatefulSet": ("/spec/template/spec", "/spec/template/metadata"),
    "DaemonSet": ("/spec/template/spec", "/spec/template/metadata"),
    "ReplicaSet": ("/spec/template/spec", "/spec/template/metadata"),
    "Job": ("/spec/template/spec", "/spec/template/metadata"),
    "CronJob": ("/spec/jobTemplate/spec/template/spec", "/spec/jobTemplate/spec/template/metadata"),
}


class NotAPodSpec(ValueError):
    """The object has no pod spec where its kind keeps one."""


class Malformed(ValueError):
    """A field read here holds another JSON type than Kubernetes gives it; says which."""


def json_type(value: Any) -> str:
    """A JSON value's type, as a message names it: an object, an array, a string, ..."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _where(pointer: str) -> str:
    """/spec/containers/0/image -> spec.containers[0].image"""
    out = ""
    for part in pointer.strip("/").split("/"):
        out += f"[{part}]" if part.isdigit() else f".{part}" if out else part
    return out


_WANTED: dict[type[Any], str] = {Mapping: "an object", list: "an array", str: "a string"}


def _expect(value: Any, kind: type[Any], pointer: str) -> None:
    """Absent (None) or of `kind`; else Malformed naming the field."""
    if value is not None and not isinstance(value, kind):
        raise Malformed(f"{_where(pointer)} must be {_WANTED[kind]}, not {json_type(value)}")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _at(obj: Mapping[str, Any], pointer: str) -> Any:
    """The value at a JSON pointer of objects; None when a member on the way is absent or
    null, Malformed when one is not an object."""
    node: Any = obj
    walked = ""
    for part in pointer.strip("/").split("/"):
        _expect(node, Mapping, walked or "/")
        walked += f"/{part}"
        node = node.get(part) if node is not None else None
    return node


@dataclass(frozen=True, slots=True)
class Container:
    list: str  # containers, initContainers or ephemeralContainers
    index: int
    name: str
    image: str
    pull_policy: str | None

    @property
    def where(self) -> str:
        return f"{self.list}[{self.index}] ({self.name})"


def containers(spec: Mapping[str, Any]) -> list[Container]:
    out = []
    for kind in CONTAINER_LISTS:
        for i, c in enumerate(spec.get(kind) or ()):
            if isinstance(c, Mapping):
                out.append(
                    Container(
                        kind,
                        i,
                        str(c.get("name") or ""),
                        str(c.get("image") or ""),
                        c.get("imagePullPolicy"),
                    )
                )
    return out


@dataclass(slots=True)
class Mutation:
    patch: list[dict[str, Any]] = field(default_factory=list)
    added_secrets: list[str] = field(default_factory=list)
    rewritten: dict[str, str] = field(default_factory=dict)  # where -> original image

    def as_json(self) -> bytes:
        return orjson.dumps(self.patch)  # compact, as the API server reads it: 5x json's speed


def pod_paths(kind: str, obj: Mapping[str, Any]) -> tuple[str, str]:
    """Where the kind keeps its pod spec and that spec's metadata; NotAPodSpec when it has
    none, Malformed when a field on the way (or one read later) has the wrong type."""
    paths = POD_PATHS.get(kind)
    if paths is None:
        raise NotAPodSpec(f"a {kind} without a pod spec")
    spec_path, meta_path = paths
    spec = _at(obj, spec_path)
    if spec is None:
        raise NotAPodSpec(f"a {kind} without a pod spec")
    _expect(spec, Mapping, spec_path)
    _check(obj, spec, spec_path, meta_path)
    return paths


def _check(obj: Mapping[str, Any], spec: Mapping[str, Any], spec_path: str, meta_path: str) -> None:
    """Malformed unless every field mutate and validate read has its Kubernetes type."""
    for path in dict.fromkeys(("/metadata", meta_path)):
        meta = _at(obj, path)
        _expect(meta, Mapping, path)
        if meta is not None:
            _expect(meta.get("annotations"), Mapping, f"{path}/annotations")
            for name in ("name", "generateName"):
                _expect(meta.get(name), str, f"{path}/{name}")
    for key, fields in [(k, ("name", "image", "imagePullPolicy")) for k in CONTAINER_LISTS] + [
        ("imagePullSecrets", ("name",))
    ]:
        items = spec.get(key)
        _expect(items, list, f"{spec_path}/{key}")
        for i, item in enumerate(items or ()):
            _expect(item, Mapping, f"{spec_path}/{key}/{i}")
            for name in fields:
                _expect(
                    item.get(name) if item is not None else None,
                    str,
                    f"{spec_path}/{key}/{i}/{name}",
                )


def mutate(
    kind: str,
    obj: Mapping[str, Any],
    policy: Policy,
    secrets_for: Callable[[str], Sequence[str]],
) -> Mutation:
    """The patch: default-registry rewrites, the Secrets the images need, always-pull."""
    spec_path, meta_path = pod_paths(kind, obj)
    spec: Mapping[str, Any] = _at(obj, spec_path)
    out = Mutation()
    images = []
    for c in containers(spec):
        image = c.image
        new = imagepolicy.rewritten(image, policy.default_registry)
        base = f"{spec_path}/{c.list}/{c.index}"
        if new is not None:
            out.patch.append({"op": "replace", "path": f"{base}/image", "value": new})
            out.rewritten[f"{c.list}/{c.name}"] = image
            image = new
        images.append(image)
        if policy.always_pull and c.pull_policy != "Always":
            out.patch.append({"op": "add", "path": f"{base}/imagePullPolicy", "value": "Always"})
    have = [
        str(e.get("name", "")) for e in spec.get("imagePullSecrets") or () if isinstance(e, Mapping)
    ]
    wanted: list[str] = []
    for image in images:
        for name in secrets_for(image):
            if name not in have and name not in wanted:
                wanted.append(name)
    if wanted:
        if spec.get("imagePullSecrets") is None:
            out.patch.append(
                {
                    "op": "add",
                    "path": f"{spec_path}/imagePullSecrets",
                    "value": [{"name": n} for n in wanted],
                }
            )
        else:
            for n in wanted:
                path = f"{spec_path}/imagePullSecrets/-"
                out.patch.append({"op": "add", "path": path, "value": {"name": n}})
        out.added_secrets = wanted
    if out.rewritten:
        meta = _at(obj, meta_path)
        value = json.dumps(out.rewritten, sort_keys=True, separators=(",", ":"))
        if not isinstance(meta, Mapping):
            out.patch.append(
                {"op": "add", "path": meta_path, "value": {"annotations": {ORIGINAL_IMAGES: value}}}
            )
        elif not isinstance(meta.get("annotations"), Mapping):
            out.patch.append(
                {
                    "op": "add",
                    "path": f"{meta_path}/annotations",
                    "value": {ORIGINAL_IMAGES: value},
                }
            )
        else:
            path = f"{meta_path}/annotations/{_escape(ORIGINAL_IMAGES)}"
            out.patch.append({"op": "add", "path": path, "value": value})
    return out


@dataclass(frozen=True, slots=True)
class Finding:
    where: str
    violation: imagepolicy.Violation


def validate(kind: str, obj: Mapping[str, Any], policy: Policy) -> list[Finding]:
    """The policy's verdicts on every container's image, as it will be pulled."""
    spec_path, _ = pod_paths(kind, obj)
    spec: Mapping[str, Any] = _at(obj, spec_path)
    return [
        Finding(c.where, v) for c in containers(spec) for v in imagepolicy.judge(c.image, policy)
    ]
