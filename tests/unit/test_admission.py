"""The admission patch and verdicts on pod specs, checked by applying the patch (jsonpatch)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest

from pullkeeper.core.admission import ORIGINAL_IMAGES, Malformed, NotAPodSpec, mutate, validate
from pullkeeper.core.policy import Policy

DIGEST = "sha256:" + "b" * 64


def _secrets(image: str) -> list[str]:
    """A namespace with two credentials for quay.io (in kubelet order) and one for ghcr.io."""
    if image.startswith("quay.io/"):
        return ["quay-team", "quay-wide"]
    if image.startswith("ghcr.io/"):
        return ["ghcr"]
    return []


def _pod(*images: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
            **spec,
        },
    }


NO_POLICY = Policy()


def _applied(kind: str, obj: dict[str, Any], policy: Policy = NO_POLICY) -> dict[str, Any]:
    m = mutate(kind, obj, policy, _secrets)
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(obj), json.loads(m.as_json()))
    # Reinvocation: the patched object needs nothing more.
    assert mutate(kind, patched, policy, _secrets).patch == []
    return patched


def test_secrets_added_when_the_list_is_absent() -> None:
    pod = _pod("quay.io/team/app:v1", "ghcr.io/org/tool:2")
    out = _applied("Pod", pod)
    assert out["spec"]["imagePullSecrets"] == [
        {"name": "quay-team"},
        {"name": "quay-wide"},
        {"name": "ghcr"},
    ]
    assert {k: v for k, v in out.items() if k != "spec"} == {
        k: v for k, v in pod.items() if k != "spec"
    }


def test_existing_entries_kept_in_order_and_not_duplicated() -> None:
    pod = _pod("quay.io/team/app:v1", imagePullSecrets=[{"name": "mine"}, {"name": "quay-wide"}])
    out = _applied("Pod", pod)
    assert out["spec"]["imagePullSecrets"] == [
        {"name": "mine"},
        {"name": "quay-wide"},
        {"name": "quay-team"},
    ]


def test_no_credentials_no_patch() -> None:
    assert (
        mutate("Pod", _pod("nginx:1.25", "registry.local:5000/x"), Policy(), _secrets).patch == []
    )


def test_every_container_list_counts() -> None:
    pod = _pod("busybox")
    pod["spec"]["initContainers"] = [{"name": "init", "image": "ghcr.io/org/init"}]
    pod["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "quay.io/team/debug"}]
    out = _applied("Pod", pod)
    assert [e["name"] for e in out["spec"]["imagePullSecrets"]] == [
        "ghcr",
        "quay-team",
        "quay-wide",
    ]


def test_default_registry_rewrites_only_unqualified_images() -> None:
    pod = _pod("nginx:1.25", f"team/app@{DIGEST}", "docker.io/library/redis:7", "quay.io/team/x")
    pod["metadata"]["annotations"] = {"keep": "me"}
    policy = Policy(default_registry="quay.io/mirror")
    out = _applied("Pod", pod, policy)
    assert [c["image"] for c in out["spec"]["containers"]] == [
        "quay.io/mirror/library/nginx:1.25",
        f"quay.io/mirror/team/app@{DIGEST}",
        "docker.io/library/redis:7",
        "quay.io/team/x",
    ]
    # The rewritten images now need quay.io's credentials too.
    assert [e["name"] for e in out["spec"]["imagePullSecrets"]] == ["quay-team", "quay-wide"]
    annotations = out["metadata"]["annotations"]
    assert annotations["keep"] == "me"
    assert json.loads(annotations[ORIGINAL_IMAGES]) == {
        "containers/c0": "nginx:1.25",
        "containers/c1": f"team/app@{DIGEST}",
    }


def test_annotation_added_when_the_pod_has_none() -> None:
    out = _applied("Pod", _pod("nginx"), Policy(default_registry="mirror.example.com:5000"))
    assert out["spec"]["containers"][0]["image"] == "mirror.example.com:5000/library/nginx"
    assert json.loads(out["metadata"]["annotations"][ORIGINAL_IMAGES]) == {"containers/c0": "nginx"}


def test_always_pull() -> None:
    pod = _pod("a:1", "b:2")
    pod["spec"]["containers"][1]["imagePullPolicy"] = "IfNotPresent"
    out = _applied("Pod", pod, Policy(always_pull=True))
    assert [c["imagePullPolicy"] for c in out["spec"]["containers"]] == ["Always", "Always"]
    assert mutate("Pod", pod, Policy(always_pull=False), _secrets).patch == []


@pytest.mark.parametrize(
    ("kind", "wrap"),
    [
        ("Deployment", lambda t: {"spec": {"template": t}}),
        ("StatefulSet", lambda t: {"spec": {"template": t}}),
        ("DaemonSet", lambda t: {"spec": {"template": t}}),
        ("Job", lambda t: {"spec": {"template": t}}),
        ("CronJob", lambda t: {"spec": {"jobTemplate": {"spec": {"template": t}}}}),
    ],
)
def test_pod_templates(kind: str, wrap: Any) -> None:
    template = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    obj = {"kind": kind, "metadata": {"name": "w"}, **wrap(template)}
    out = _applied(kind, obj, Policy(default_registry="quay.io/hub", always_pull=True))
    pod = (
        out["spec"]["jobTemplate"]["spec"]["template"]
        if kind == "CronJob"
        else out["spec"]["template"]
    )
    assert pod["spec"]["containers"][0] == {
        "name": "c",
        "image": "quay.io/hub/library/nginx",
        "imagePullPolicy": "Always",
    }
    assert pod["spec"]["imagePullSecrets"] == [{"name": "quay-team"}, {"name": "quay-wide"}]
    assert ORIGINAL_IMAGES in pod["metadata"]["annotations"]
    assert "annotations" not in out["metadata"]  # the workload's own metadata is untouched


def test_not_a_pod_spec() -> None:
    with pytest.raises(NotAPodSpec):
        mutate("Deployment", {"spec": {}}, Policy(), _secrets)
    with pytest.raises(NotAPodSpec):
        mutate("ConfigMap", {"data": {}}, Policy(), _secrets)


def test_validate_names_each_container() -> None:
    pod = _pod("quay.io/team/app:latest", f"ghcr.io/org/tool@{DIGEST}")
    pod["spec"]["initContainers"] = [{"name": "init", "image": "evil.io/x:1"}]
    found = validate(
        "Pod",
        pod,
        Policy(allowlist=("quay.io", "ghcr.io"), require_digest=True, forbid_latest=True),
    )
    assert [(f.where, f.violation.rule) for f in found] == [
        ("initContainers[0] (init)", "allowlist"),
        ("initContainers[0] (init)", "digest"),
        ("containers[0] (c0)", "digest"),
        ("containers[0] (c0)", "latest"),
    ]


# (kind, object, the Malformed message): fields of another JSON type than Kubernetes gives them.
MALFORMED = [
    ("Pod", {"spec": {"containers": 5}}, "spec.containers must be an array, not a number"),
    ("Pod", {"spec": {"containers": "nope"}}, "spec.containers must be an array, not a string"),
    ("Pod", {"spec": {"containers": [5]}}, "spec.containers[0] must be an object, not a number"),
    (
        "Pod",
        {"spec": {"initContainers": [{"image": 5}]}},
        "spec.initContainers[0].image must be a string, not a number",
    ),
    (
        "Pod",
        {"spec": {"ephemeralContainers": [{"name": {}}]}},
        "spec.ephemeralContainers[0].name must be a string, not an object",
    ),
    (
        "Pod",
        {"spec": {"containers": [{"image": "x", "imagePullPolicy": True}]}},
        "spec.containers[0].imagePullPolicy must be a string, not a boolean",
    ),
    (
        "Pod",
        {"spec": {"imagePullSecrets": 5}},
        "spec.imagePullSecrets must be an array, not a number",
    ),
    (
        "Pod",
        {"spec": {"imagePullSecrets": ["a"]}},
        "spec.imagePullSecrets[0] must be an object, not a string",
    ),
    (
        "Pod",
        {"spec": {"imagePullSecrets": [{"name": []}]}},
        "spec.imagePullSecrets[0].name must be a string, not an array",
    ),
    ("Pod", {"metadata": "x", "spec": {}}, "metadata must be an object, not a string"),
    (
        "Pod",
        {"metadata": {"annotations": []}, "spec": {}},
        "metadata.annotations must be an object, not an array",
    ),
    (
        "Pod",
        {"metadata": {"name": ["x"]}, "spec": {}},
        "metadata.name must be a string, not an array",
    ),
    ("Pod", {"spec": 5}, "spec must be an object, not a number"),
    ("Deployment", {"spec": {"template": "x"}}, "spec.template must be an object, not a string"),
    (
        "Deployment",
        {"spec": {"template": {"metadata": 1, "spec": {}}}},
        "spec.template.metadata must be an object, not a number",
    ),
    (
        "CronJob",
        {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": {}}}}}}},
        "spec.jobTemplate.spec.template.spec.containers must be an array, not an object",
    ),
]


@pytest.mark.parametrize(("kind", "obj", "message"), MALFORMED, ids=[m[2] for m in MALFORMED])
def test_fields_of_another_type_are_malformed(kind: str, obj: dict[str, Any], message: str) -> None:
    for decide in (
        lambda: mutate(kind, obj, Policy(always_pull=True), _secrets),
        lambda: validate(kind, obj, Policy(forbid_latest=True)),
    ):
        with pytest.raises(Malformed) as raised:
            decide()
        assert str(raised.value) == message


def test_absent_and_null_fields_are_not_malformed() -> None:
    pod = {"metadata": None, "spec": {"containers": [None, {"image": "quay.io/a:1", "name": None}]}}
    pod["spec"]["imagePullSecrets"] = None
    pod["spec"]["initContainers"] = None
    assert validate("Pod", pod, Policy(forbid_latest=True)) == []
    assert mutate("Pod", pod, Policy(), _secrets).added_secrets == ["quay-team", "quay-wide"]
