"""core/workloads: the pure rules, one row per case."""

from __future__ import annotations

from typing import Any

import pytest

from pullkeeper.core import workloads as rules


@pytest.mark.parametrize(
    ("existing", "wanted", "added"),
    [
        ([], ["a", "b"], ["a", "b"]),
        (["a", "b"], ["a", "b"], []),
        (["x", "b"], ["a", "b", "c"], ["a", "c"]),
        (["b"], ["a", "a", "b"], ["a"]),
        (["x"], [], []),
    ],
)
def test_merge_pull_secrets(existing: list[str], wanted: list[str], added: list[str]) -> None:
    assert rules.merge_pull_secrets(existing, wanted) == added


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("deployment", "Deployment"),
        ("Deployments", "Deployment"),
        ("deploy", "Deployment"),
        ("sts", "StatefulSet"),
        ("statefulset", "StatefulSet"),
        ("ds", "DaemonSet"),
        ("DaemonSet", "DaemonSet"),
        ("cronjob", None),
        ("pod", None),
    ],
)
def test_kind_of(text: str, kind: str | None) -> None:
    assert rules.kind_of(text) == kind


def test_images_are_init_containers_first_and_once() -> None:
    spec = {
        "initContainers": [{"name": "i", "image": "busybox"}],
        "containers": [{"name": "a", "image": "x/app:1"}, {"name": "b", "image": "busybox"}],
    }
    assert rules.images(spec) == ["busybox", "x/app:1"]


def _deployment(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "uid": "u1", "generation": generation},
        "spec": {"replicas": 2},
        "status": status,
    }


def _pod(reason: str | None) -> dict[str, Any]:
    state = {"waiting": {"reason": reason}} if reason else {"running": {}}
    return {
        "metadata": {"name": "web-1", "ownerReferences": [{"uid": "u1"}]},
        "status": {"containerStatuses": [{"image": "x/app:1", "state": state}]},
    }


FULL = {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
DEADLINE = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]


@pytest.mark.parametrize(
    ("deployment", "pods", "state", "failed_images"),
    [
        (_deployment(), [], "progressing", []),
        (_deployment(**FULL), [_pod(None)], "ready", []),
        (_deployment(2, **FULL), [], "progressing", []),  # the new spec is not observed yet
        (_deployment(**{**FULL, "readyReplicas": 1}), [], "progressing", []),
        (_deployment(), [_pod("ContainerCreating")], "progressing", []),
        (_deployment(), [_pod("ErrImagePull")], "failed", ["x/app:1"]),
        (_deployment(), [_pod("ImagePullBackOff")], "failed", ["x/app:1"]),
        (_deployment(conditions=DEADLINE), [], "failed", []),
    ],
)
def test_rollout_state(
    deployment: dict[str, Any], pods: list[dict[str, Any]], state: str, failed_images: list[str]
) -> None:
    roll = rules.rollout(deployment, pods)
    assert (roll.state, roll.failed_images) == (state, failed_images)


def test_failed_pulls_come_from_the_kubelets_events() -> None:
    events = [
        {"reason": "Pulling", "message": 'Pulling image "a/b:1"'},
        {"reason": "Failed", "message": 'Failed to pull image "a/b:1": rpc error: 401'},
        {"reason": "Failed", "message": "Error: ErrImagePull"},
        {"reason": "Failed", "message": 'Failed to pull image "a/b:1": again'},
    ]
    assert rules.failed_pulls(events) == ["a/b:1"]


def _obj(name: str, uid: str, *owners: str, kind: str = "Pod") -> dict[str, Any]:
    refs = [
        {"uid": o, "kind": "ReplicaSet" if o.startswith("rs") else "Deployment"} for o in owners
    ]
    return {"kind": kind, "metadata": {"name": name, "uid": uid, "ownerReferences": refs}}


def test_ownership_is_by_uid_never_by_name() -> None:
    """Deployment web (u1) beside web-api (u2): their ReplicaSets both start with `web-`."""
    sets = [
        _obj("web-7d9f8c6b5", "rs1", "u1", kind="ReplicaSet"),
        _obj("web-api-7d9f8c6b5", "rs2", "u2", kind="ReplicaSet"),
    ]
    pods = [
        _obj("web-7d9f8c6b5-abcde", "p1", "rs1"),
        _obj("web-api-7d9f8c6b5-fghij", "p2", "rs2"),
        _obj("web-own", "p3", "u1"),  # owned by the workload itself
        _obj("web-7d9f8c6b5-bare", "p4"),
    ]
    owned_sets = rules.owned_replicasets(_deployment(), sets)
    assert [r["metadata"]["name"] for r in owned_sets] == ["web-7d9f8c6b5"]
    owned = rules.owned_pods(_deployment(), owned_sets, pods)
    assert [p["metadata"]["name"] for p in owned] == ["web-7d9f8c6b5-abcde", "web-own"]


@pytest.mark.parametrize(
    ("involved", "shown"),
    [
        ({"kind": "Deployment", "name": "web", "uid": "u1"}, True),
        ({"kind": "Deployment", "name": "web-api", "uid": "u2"}, False),
        ({"kind": "ReplicaSet", "name": "web-7d9f8c6b5", "uid": "rs1"}, True),
        ({"kind": "ReplicaSet", "name": "web-api-7d9f8c6b5", "uid": "rs2"}, False),
        ({"kind": "Pod", "name": "web-7d9f8c6b5-abcde", "uid": "p1"}, True),
        ({"kind": "Pod", "name": "web-api-7d9f8c6b5-fghij", "uid": "p2"}, False),
        # A uid decides: an object of that name made anew is another object.
        ({"kind": "Pod", "name": "web-7d9f8c6b5-abcde", "uid": "p9"}, False),
        # No uid (some event sources): kind and exact name.
        ({"kind": "Pod", "name": "web-7d9f8c6b5-abcde"}, True),
        ({"kind": "ReplicaSet", "name": "web-api-7d9f8c6b5"}, False),
    ],
)
def test_related_events_are_the_workloads_own(involved: dict[str, str], shown: bool) -> None:
    sets = [_obj("web-7d9f8c6b5", "rs1", "u1", kind="ReplicaSet")]
    pods = [_obj("web-7d9f8c6b5-abcde", "p1", "rs1")]
    event = {"metadata": {"name": "e", "uid": "e1"}, "involvedObject": involved, "reason": "R"}
    deployment = {**_deployment(), "kind": "Deployment"}
    found = rules.related_events(deployment, sets, pods, [event])
    assert [e["object"] for e in found] == ([f"{involved['kind']}/{involved['name']}"] * shown)


def test_events_of_one_second_are_ordered_as_recorded() -> None:
    """Within a second of firstTimestamp, the recorder's name (OBJECT.HEX-NANOSECONDS) orders
    events; the API server lists them by name, which is not the order they happened in."""
    pods = [_obj("web-1", "p1", "u1")]

    def event(name: str, reason: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "p1"},
            "reason": reason,
            "firstTimestamp": "2026-01-01T00:00:00Z",
        }

    listed = [
        event("web-1.188a0f3c2b000003", "Pulled"),
        event("web-1.188a0f3c2b000001", "Scheduled"),
        event("web-1.188a0f3c2b000002", "Pulling"),
    ]
    found = rules.related_events({**_deployment(), "kind": "Deployment"}, [], pods, listed)
    assert [e["reason"] for e in found] == ["Scheduled", "Pulling", "Pulled"]
