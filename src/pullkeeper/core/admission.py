"""Admission decisions on a pod spec: the JSONPatch that gives it its pull credentials and
policy, and the policy's verdicts on its images.

Pure: the caller supplies, for the pod's namespace, which Secrets the kubelet
would use for an image and the effective policy. The patch keeps everything
the object had: every imagePullSecrets entry and its order, every field not
named here. Applied twice (reinvocation), it changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pullkeeper.core import imagepolicy
from pullkeeper.core import policy as rules

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


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _at(obj: Mapping[str, Any], pointer: str) -> Any:
    node: Any = obj
    for part in pointer.strip("/").split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
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
                        str(c.get("name", "")),
                        str(c.get("image", "")),
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
        return json.dumps(self.patch, separators=(",", ":")).encode()


def pod_paths(kind: str, obj: Mapping[str, Any]) -> tuple[str, str]:
    paths = POD_PATHS.get(kind)
    if paths is None or not isinstance(_at(obj, paths[0]), Mapping):
        raise NotAPodSpec(f"a {kind} without a pod spec")
    return paths


def mutate(
    kind: str,
    obj: Mapping[str, Any],
    policy: rules.Policy,
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


def validate(kind: str, obj: Mapping[str, Any], policy: rules.Policy) -> list[Finding]:
    """The policy's verdicts on every container's image, as it will be pulled."""
    spec_path, _ = pod_paths(kind, obj)
    spec: Mapping[str, Any] = _at(obj, spec_path)
    return [
        Finding(c.where, v) for c in containers(spec) for v in imagepolicy.judge(c.image, policy)
    ]
