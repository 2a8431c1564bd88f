"""core.workloads.pull_state: a workload's pull state from its pods, one row per case, the pod
statuses shaped as the kubelet reports them."""

from __future__ import annotations

from typing import Any

import pytest

from pullkeeper.core.workloads import (
    NO_PODS,
    NOT_SCHEDULED,
    PULL_FAILED,
    PULLED,
    PULLING,
    PullState,
    pull_state,
)

SPEC = {"containers": [{"name": "app", "image": "r.example/app:1"}]}
SECRETS = SPEC | {"imagePullSecrets": [{"name": "team-pull"}]}
ID = "r.example/app@sha256:" + "a" * 64


def _pod(*containers: dict[str, Any], node: str = "n1", init: tuple[Any, ...] = ()) -> Any:
    return {
        "spec": {"nodeName": node} if node else {},
        "status": {"containerStatuses": list(containers), "initContainerStatuses": list(init)},
    }


def _running(image_id: str = ID) -> dict[str, Any]:
    return {
        "name": "app",
        "image": "r.example/app:1",
        "imageID": image_id,
        "state": {"running": {}},
    }


def _waiting(reason: str, message: str = "") -> dict[str, Any]:
    waiting = {"reason": reason} | ({"message": message} if message else {})
    return {"name": "app", "image": "r.example/app:1", "imageID": "", "state": {"waiting": waiting}}


BACKOFF = 'Back-off pulling image "r.example/app:1": ErrImagePull: 401 Unauthorized'
CASES = [
    ("no pods", SPEC, [], PullState(NO_PODS, "no pod of it exists yet")),
    (
        "unscheduled",
        SPEC,
        [{"spec": {}, "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}}],
        PullState(NOT_SCHEDULED, "no pod is on a node yet: nothing is pulled"),
    ),
    (
        "pulled, no secret",
        SPEC,
        [_pod(_running())],
        PullState(PULLED, "every image is on its node (no pull Secret named)"),
    ),
    (
        "pulled with a secret",
        SECRETS,
        [_pod(_running()), _pod(_running())],
        PullState(PULLED, "every image is on its node (with team-pull)"),
    ),
    (
        "creating",
        SECRETS,
        [_pod(_waiting("ContainerCreating"))],
        PullState(PULLING, "the kubelet is getting the images"),
    ),
    (
        "placed, no status yet",
        SPEC,
        [_pod()],
        PullState(PULLING, "the kubelet is getting the images"),
    ),
    (
        "one of two pods backs off",
        SECRETS,
        [_pod(_running()), _pod(_waiting("ImagePullBackOff", BACKOFF))],
        PullState(PULL_FAILED, f"r.example/app:1: ImagePullBackOff: {BACKOFF}"),
    ),
    (
        "an init container fails",
        SPEC,
        [_pod(init=(_waiting("ErrImagePull"),))],
        PullState(PULL_FAILED, "r.example/app:1: ErrImagePull"),
    ),
    (
        "a bad name",
        SPEC,
        [_pod(_waiting("InvalidImageName", "couldn't parse"))],
        PullState(PULL_FAILED, "r.example/app:1: InvalidImageName: couldn't parse"),
    ),
    (
        "a crash is no pull failure",
        SPEC,
        [_pod({**_running(), "state": {"waiting": {"reason": "CrashLoopBackOff"}}})],
        PullState(PULLED, "every image is on its node (no pull Secret named)"),
    ),
]


@pytest.mark.parametrize(
    ("spec", "pods", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_pull_state(spec: dict[str, Any], pods: list[Any], want: PullState) -> None:
    assert pull_state(spec, pods) == want
