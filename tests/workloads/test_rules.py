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


def test_owned_pods_are_the_workloads_or_its_replicasets() -> None:
    pods = [
        {"metadata": {"name": "own", "ownerReferences": [{"uid": "u1"}]}},
        {"metadata": {"name": "rs", "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d"}]}},
        {
            "metadata": {
                "name": "other",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "api-1"}],
            }
        },
        {"metadata": {"name": "bare"}},
    ]
    owned = rules.owned_pods(_deployment(), pods)
    assert [p["metadata"]["name"] for p in owned] == ["own", "rs"]
