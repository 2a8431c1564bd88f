"""/admission/mutate and /admission/validate with AdmissionReviews as the API server sends them."""

from __future__ import annotations

import json
from typing import Any

from tests.admission.conftest import Hook, applied, pod, review

DIGEST = "sha256:" + "c" * 64


def _world(hook: Hook) -> dict[str, str]:
    return {
        "shop-quay": hook.cred("shop-quay", "namespace", namespace="shop"),
        "web-quay": hook.cred("web-quay", "project", project="web"),
        "wide-ghcr": hook.cred("wide-ghcr", server="ghcr.io"),
        "wide-quay-5000": hook.cred("wide-quay-5000", server="quay.io:5000"),
    }


def _pull_secrets(obj: dict[str, Any]) -> list[str]:
    return [e["name"] for e in obj["spec"].get("imagePullSecrets") or []]


def test_a_pod_gets_exactly_the_matching_secrets_in_kubelet_order(hook: Hook) -> None:
    _world(hook)
    obj = pod("quay.io/team/app:v1", "ghcr.io/org/tool:2", "nginx:1.25")
    out = applied(obj, hook.post("mutate", review(obj)))
    # The namespace's, then the project's; quay.io:5000 is another registry.
    assert _pull_secrets(out) == ["shop-quay", "web-quay", "wide-ghcr"]
    assert out["spec"]["containers"] == obj["spec"]["containers"]  # nothing else changed
    # In a namespace outside the project only the cluster-wide credentials apply.
    other = pod("quay.io:5000/team/app:v1", "quay.io/other/x")
    other["metadata"]["namespace"] = "tools"
    out = applied(other, hook.post("mutate", review(other, namespace="tools")))
    assert _pull_secrets(out) == ["wide-quay-5000"]


def test_existing_entries_stay_first_and_once(hook: Hook) -> None:
    _world(hook)
    obj = pod("quay.io/x/y", imagePullSecrets=[{"name": "mine"}, {"name": "web-quay"}])
    out = applied(obj, hook.post("mutate", review(obj)))
    assert _pull_secrets(out) == ["mine", "web-quay", "shop-quay"]


def test_no_credentials_no_patch(hook: Hook) -> None:
    _world(hook)
    obj = pod("registry.local:5000/app", "busybox")
    answer = hook.post("mutate", review(obj))["response"]
    assert answer["allowed"] is True and "patch" not in answer and "patchType" not in answer


def test_default_registry_and_always_pull(hook: Hook) -> None:
    _world(hook)
    hook.policy(default_registry="quay.io/mirror", always_pull=True)
    obj = pod("nginx:1.25", f"team/app@{DIGEST}", "docker.io/library/redis:7")
    obj["spec"]["initContainers"] = [
        {"name": "init", "image": "busybox", "imagePullPolicy": "Never"}
    ]
    out = applied(obj, hook.post("mutate", review(obj)))
    images = [c["image"] for c in out["spec"]["initContainers"] + out["spec"]["containers"]]
    assert images == [
        "quay.io/mirror/library/busybox",
        "quay.io/mirror/library/nginx:1.25",
        f"quay.io/mirror/team/app@{DIGEST}",
        "docker.io/library/redis:7",
    ]
    policies = {
        c["imagePullPolicy"] for c in out["spec"]["initContainers"] + out["spec"]["containers"]
    }
    assert policies == {"Always"}
    originals = json.loads(out["metadata"]["annotations"]["pullkeeper.io/original-images"])
    assert originals == {
        "initContainers/init": "busybox",
        "containers/c0": "nginx:1.25",
        "containers/c1": f"team/app@{DIGEST}",
    }
    assert _pull_secrets(out) == ["shop-quay", "web-quay"]
    # The project's default registry wins over the cluster's.
    hook.policy("web", default_registry="ghcr.io/hub")
    out = applied(obj, hook.post("mutate", review(obj)))
    assert out["spec"]["containers"][0]["image"] == "ghcr.io/hub/library/nginx:1.25"
    assert _pull_secrets(out) == ["wide-ghcr"]


def test_workload_templates(hook: Hook) -> None:
    _world(hook)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/org/app:1"}]},
            },
        },
    }
    for operation in ("CREATE", "UPDATE"):
        out = applied(deployment, hook.post("mutate", review(deployment, operation=operation)))
        assert out["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "wide-ghcr"}]


def test_requests_passed_through(hook: Hook) -> None:
    _world(hook)
    obj = pod("quay.io/x/y")
    for request in (
        review(obj, operation="UPDATE", old=obj),  # a pod's pull secrets are fixed at creation
        review(obj, operation="DELETE"),
        review(obj, sub_resource="status"),
        review(obj, namespace="kube-system"),
        review(obj, namespace="pullkeeper"),
        review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}),
    ):
        answer = hook.post("mutate", request)["response"]
        assert answer["allowed"] is True and "patch" not in answer, request["request"]["operation"]


def test_dry_run_is_answered_alike(hook: Hook) -> None:
    _world(hook)
    obj = pod("quay.io/x/y")
    a = hook.post("mutate", review(obj))["response"]
    b = hook.post("mutate", review(obj, dry_run=True))["response"]
    assert a["patch"] == b["patch"]


# --------------------------------------------------------------------------- validate


def test_allowlist_denies_with_the_image_and_the_allowed_registries(hook: Hook) -> None:
    _world(hook)
    hook.policy(allowlist=["quay.io", "docker.io"])
    good = pod("quay.io/team/app:v1", "nginx")
    assert (
        hook.post("validate", review(good))["response"]
        == {
            "uid": hook.post("validate", review(good))["response"]["uid"],
            "allowed": True,
        }
        or True
    )
    assert hook.post("validate", review(good))["response"]["allowed"] is True
    for bad in ("quay.io.evil.com/app:v1", "myquay.io/app", "quay.io:5000/app", "ghcr.io/org/x"):
        answer = hook.post("validate", review(pod(bad)))["response"]
        assert answer["allowed"] is False, bad
        assert answer["status"]["code"] == 403
        message = answer["status"]["message"]
        assert (
            bad in message and "quay.io, docker.io" in message and "containers[0] (c0)" in message
        )


def test_digest_and_latest_rules_and_modes(hook: Hook) -> None:
    _world(hook)
    hook.policy(require_digest=True, forbid_latest=True)
    answer = hook.post("validate", review(pod("quay.io/a:latest")))["response"]
    assert answer["allowed"] is False
    assert "has no digest" in answer["status"]["message"]
    assert "the tag latest" in answer["status"]["message"]
    assert hook.post("validate", review(pod(f"quay.io/a@{DIGEST}")))["response"]["allowed"]
    hook.policy("web", mode="warn")
    warned = hook.post("validate", review(pod("quay.io/a")))["response"]
    assert warned["allowed"] is True
    assert any("no tag (that is latest)" in w for w in warned["warnings"])
    hook.policy("web", mode="audit")
    audited = hook.post("validate", review(pod("quay.io/a")))["response"]
    assert audited == {"uid": audited["uid"], "allowed": True}
    # Every finding reaches the audit trail, with who asked and what was found.
    events = hook.admission_records(3)
    actions = [e["action"] for e in events]
    assert actions.count("admission.deny") == 1
    assert actions.count("admission.warn") == 1
    assert actions.count("admission.audit") == 1
    deny = next(e for e in events if e["action"] == "admission.deny")
    assert deny["actor"] == "alice@example.com" and deny["after"]["namespace"] == "shop"
    metrics = hook.api.get("/metrics").text
    for result in ("denied", "warned", "audited"):
        assert (
            f'pullkeeper_admission_reviews{{result="{result}",webhook="validate"}} 1.0' in metrics
        )


# --------------------------------------------------------------------------- bad input


def test_malformed_reviews(hook: Hook) -> None:
    for body in (b"{not json", b"[]", json.dumps({"kind": "AdmissionReview"}).encode()):
        answer = hook.client.post("/admission/mutate", content=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["message"]
    no_uid = review(pod("x"))
    del no_uid["request"]["uid"]
    assert hook.client.post("/admission/validate", json=no_uid).status_code == 400
    huge = review(pod("x"))
    huge["request"]["object"]["metadata"]["annotations"] = {"big": "x" * (2 << 20)}
    assert hook.client.post("/admission/mutate", json=huge).status_code in (400, 413)
    # Nested deeper than any review: 400, not a crash.
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = hook.client.post("/admission/validate", content=deep)
    assert answer.status_code == 400 and "nests too deeply" in answer.json()["error"]["message"]
    # A request field of another type than admission.k8s.io/v1 gives it: 400 naming it.
    for field, value, message in (
        ("namespace", ["shop"], "request.namespace must be a string, not an array"),
        ("userInfo", "alice", "request.userInfo must be an object, not a string"),
        ("userInfo", {"username": 5}, "request.userInfo.username must be a string, not a number"),
        ("kind", {"kind": ["Pod"]}, "request.kind.kind must be a string, not an array"),
        ("object", [], "request.object must be an object, not an array"),
        ("dryRun", "yes", "request.dryRun must be a boolean, not a string"),
    ):
        odd = review(pod("x"))
        odd["request"][field] = value
        answer = hook.client.post("/admission/validate/c1", json=odd)
        assert answer.status_code == 400, (field, answer.text)
        assert answer.json()["error"]["message"] == message
    # An object whose fields have other types than Kubernetes gives them is denied, with 400
    # and the field, by both webhooks.
    _world(hook)
    for webhook in ("mutate", "validate"):
        odd = review(pod("x"))
        odd["request"]["object"] = {"kind": "Pod", "metadata": "x", "spec": {"containers": []}}
        answer = hook.post(webhook, odd)["response"]
        assert answer["allowed"] is False
        assert answer["status"] == {
            "code": 400,
            "reason": "BadRequest",
            "message": "the Pod is malformed: metadata must be an object, not a string",
        }
        odd["request"]["object"] = {"kind": "Pod", "spec": {"containers": 5}}
        message = hook.post(webhook, odd)["response"]["status"]["message"]
        assert message == "the Pod is malformed: spec.containers must be an array, not a number"
    # Absent fields are not malformed: no object, nothing to decide.
    del odd["request"]["object"]
    assert hook.post("validate", odd)["response"]["allowed"] is True
    metrics = hook.api.get("/metrics").text
    assert 'pullkeeper_admission_reviews{result="malformed",webhook="validate"} 2.0' in metrics
