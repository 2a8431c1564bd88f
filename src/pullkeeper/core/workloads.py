"""Workloads: the pod template pullkeeper deploys, the pull secrets it attaches, and how a
rollout stands, read from the objects the Kubernetes API returns (plain dicts). No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

# The kinds `attach` works on, by every name kubectl accepts for them.
KINDS = {
    "deployment": "Deployment",
    "deployments": "Deployment",
    "deploy": "Deployment",
    "statefulset": "StatefulSet",
    "statefulsets": "StatefulSet",
    "sts": "StatefulSet",
    "daemonset": "DaemonSet",
    "daemonsets": "DaemonSet",
    "ds": "DaemonSet",
}

# Container waiting reasons that mean the kubelet could not get the image.
PULL_FAILURES = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
_FAILED_PULL = re.compile(r'^Failed to pull image "([^"]+)"')

PROGRESSING, READY, FAILED = "progressing", "ready", "failed"


def kind_of(text: str) -> str | None:
    """The workload kind `deployment`, `sts`, `DaemonSets`... names; None for any other."""
    return KINDS.get(text.lower())


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    port: int | None = None


def deployment(
    name: str,
    namespace: str,
    containers: Sequence[Container],
    replicas: int,
    pull_secrets: Sequence[str],
) -> Obj:
    """A Deployment labelled app=NAME whose pods carry exactly these imagePullSecrets."""
    labels = {"app": name}
    spec: Obj = {"containers": [_container(c) for c in containers]}
    if pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": spec},
        },
    }


def _container(c: Container) -> Obj:
    out: Obj = {"name": c.name, "image": c.image}
    if c.port is not None:
        out["ports"] = [{"containerPort": c.port, "protocol": "TCP"}]
    return out


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec


def images(spec: Obj) -> list[str]:
    """The images a pod spec pulls (init containers first, as the kubelet starts them), once."""
    found = [
        c.get("image", "")
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if c.get("image")
    ]
    return list(dict.fromkeys(found))


def pull_secret_names(spec: Obj) -> list[str]:
    return [str(ref.get("name", "")) for ref in spec.get("imagePullSecrets") or []]


def merge_pull_secrets(existing: Sequence[str], wanted: Iterable[str]) -> list[str]:
    """The wanted names missing from existing, in wanted order: what to append."""
    have = set(existing)
    return [n for n in dict.fromkeys(wanted) if n not in have]


# --------------------------------------------------------------------------- rollouts


@dataclass(frozen=True, slots=True)
class Rollout:
    state: str  # progressing | ready | failed
    replicas: int
    ready: int
    updated: int
    available: int
    reason: str
    conditions: list[Obj] = field(default_factory=list)
    failed_images: list[str] = field(default_factory=list)


def rollout(workload: Obj, pods: Sequence[Obj], events: Sequence[Obj] = ()) -> Rollout:
    """Where a Deployment's rollout stands: ready, failed (an image cannot be pulled, or the
    progress deadline passed), or still progressing."""
    meta, spec, status = (
        workload["metadata"],
        workload.get("spec") or {},
        workload.get("status") or {},
    )
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    conditions = [
        {k: c.get(k, "") for k in ("type", "status", "reason", "message")}
        for c in status.get("conditions") or []
    ]
    failing = _pull_failures(pods)
    failed_images = list(dict.fromkeys([*(i for i, _ in failing), *failed_pulls(events)]))
    observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 1)
    deadline = next(
        (c for c in conditions if c["type"] == "Progressing" and c["status"] == "False"), None
    )
    if failing:
        image, reason = failing[0]
        return Rollout(
            FAILED,
            wanted,
            ready,
            updated,
            available,
            f"{image}: {reason}",
            conditions,
            failed_images,
        )
    if deadline is not None:
        why = deadline["message"] or deadline["reason"]
        return Rollout(FAILED, wanted, ready, updated, available, why, conditions, failed_images)
    if observed and min(ready, updated, available) >= wanted:
        why = f"{ready}/{wanted} replicas ready"
        return Rollout(READY, wanted, ready, updated, available, why, conditions, failed_images)
    why = f"{ready}/{wanted} replicas ready"
    return Rollout(PROGRESSING, wanted, ready, updated, available, why, conditions, failed_images)


def _pull_failures(pods: Sequence[Obj]) -> list[tuple[str, str]]:
    """(image, waiting reason) of every container waiting because its image cannot be had."""
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        for c in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_FAILURES:
                out.append((str(c.get("image", "")), str(waiting["reason"])))
    return out


def failed_pulls(events: Sequence[Obj]) -> list[str]:
    """The images named by the kubelet's `Failed to pull image "..."` events, once each."""
    found = []
    for e in events:
        m = _FAILED_PULL.match(str(e.get("message", "")))
        if m and e.get("reason") == "Failed":
            found.append(m.group(1))
    return list(dict.fromkeys(found))


def _owned_by(obj: Obj, owners: set[str]) -> bool:
    return any(o.get("uid") in owners for o in obj["metadata"].get("ownerReferences") or [])


def owned_replicasets(workload: Obj, replicasets: Iterable[Obj]) -> list[Obj]:
    """The ReplicaSets a Deployment owns: by owner reference, never by name (the ReplicaSets
    of a Deployment `web-api` start with `web-` too)."""
    return [rs for rs in replicasets if _owned_by(rs, {workload["metadata"].get("uid")})]


def owned_pods(workload: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj]) -> list[Obj]:
    """The pods a workload owns, directly or through one of the ReplicaSets it owns."""
    owners = {workload["metadata"].get("uid")}
    owners |= {rs["metadata"].get("uid") for rs in owned_replicasets(workload, replicasets)}
    return [pod for pod in pods if _owned_by(pod, owners)]


def related_events(
    workload: Obj, replicasets: Sequence[Obj], pods: Sequence[Obj], events: Iterable[Obj]
) -> list[Obj]:
    """Events about the workload, its ReplicaSets and its pods (by uid, else by kind and exact
    name), oldest first, as plain rows."""
    kind = workload.get("kind", "Deployment")
    mine = [(kind, workload), *(("ReplicaSet", rs) for rs in replicasets)]
    mine += [("Pod", p) for p in pods]
    uids = {o["metadata"].get("uid") for _, o in mine} - {None, ""}
    names = {(k, o["metadata"]["name"]) for k, o in mine}
    rows = []
    for e in events:
        obj = e.get("involvedObject") or {}
        who, what = obj.get("name", ""), obj.get("kind", "")
        if not (obj.get("uid") in uids if obj.get("uid") else (what, who) in names):
            continue
        rows.append(
            {
                "id": e["metadata"].get("uid") or e["metadata"]["name"],
                "count": int(e.get("count") or 1),
                "at": e.get("lastTimestamp") or e.get("eventTime") or "",
                "first_at": e.get("firstTimestamp") or e.get("eventTime") or "",
                "type": e.get("type", ""),
                "reason": e.get("reason", ""),
                "object": f"{what}/{who}",
                "message": e.get("message", ""),
                "_name": str(e["metadata"].get("name", "")),
            }
        )
    rows.sort(key=lambda r: (r["first_at"], _recorded_at(r.pop("_name"))))
    return rows


def _recorded_at(name: str) -> int:
    """When an event was recorded, to the nanosecond, as client-go's recorder names events
    (OBJECT.HEX-NANOSECONDS): the order within one second of `firstTimestamp`. 0 when the
    name is not of that form (the list's order then stays)."""
    suffix = name.rpartition(".")[2]
    try:
        return int(suffix, 16) if 15 <= len(suffix) <= 16 else 0
    except ValueError:
        return 0


# --------------------------------------------------------------------------- pull state

PULLED, PULLING, PULL_FAILED, NOT_SCHEDULED, NO_PODS = (
    "pulled",
    "pulling",
    "pull failed",
    "not on a node",
    "no pods",
)


@dataclass(frozen=True, slots=True)
class PullState:
    state: str  # one of the five above
    reason: str = ""


def _container_statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]


def _scheduled(pod: Obj) -> bool:
    if (pod.get("spec") or {}).get("nodeName"):
        return True
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True" for c in conditions)


def pull_state(spec: Obj, pods: Sequence[Obj]) -> PullState:
    """How a workload's images fare on the nodes, from its pods: a pull failed (the kubelet's
    reason and message), every image pulled (the kubelet reports an image id for each
    container), still pulling, no pod on a node yet, or no pod at all."""
    if not pods:
        return PullState(NO_PODS, "no pod of it exists yet")
    for pod in pods:
        for c in _container_statuses(pod):
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_FAILURES:
                message = str(waiting.get("message") or "").strip()
                reason = f"{c.get('image', '')}: {waiting['reason']}"
                return PullState(PULL_FAILED, f"{reason}: {message}" if message else reason)
    if not any(_scheduled(p) for p in pods):
        return PullState(NOT_SCHEDULED, "no pod is on a node yet: nothing is pulled")
    wanted = len(spec.get("initContainers") or []) + len(spec.get("containers") or [])
    placed = [p for p in pods if _scheduled(p)]
    if all(
        len(_container_statuses(p)) >= wanted
        and all(c.get("imageID") for c in _container_statuses(p))
        for p in placed
    ):
        secrets = pull_secret_names(spec)
        how = f"with {', '.join(secrets)}" if secrets else "no pull Secret named"
        return PullState(PULLED, f"every image is on its node ({how})")
    return PullState(PULLING, "the kubelet is getting the images")
