"""Deploy, follow and attach through the API (in-process server, sync on) against the real
API server; rollouts that pull, on its real node, whose kubelet pulls from the real token
registry with the Secrets it is given."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Env, assert_error
from tests.workloads.conftest import RUNNABLE, Cluster, eventually, pulls_by_the_node

pytestmark = pytest.mark.settings(sync=True, sync_poll_seconds=0.2)

SHOP = "clusters/c1/namespaces/shop/workloads"
CART = "clusters/c1/namespaces/cart/workloads"


def _settled(env: Env, base: str, name: str, timeout: float = 10.0) -> dict[str, Any]:
    """The workload's status once its rollout is ready or failed."""

    def done() -> dict[str, Any] | None:
        status: dict[str, Any] = env.admin.ok("GET", f"{base}/{name}")
        return status if status["state"] != "progressing" else None

    return eventually(done, timeout, what=f"the rollout of {name} ends")


def _backing_off(env: Env, base: str, name: str) -> dict[str, Any]:
    """The workload's status once the kubelet backs off pulling its image."""

    def backing_off() -> dict[str, Any] | None:
        status: dict[str, Any] = env.admin.ok("GET", f"{base}/{name}")
        return status if "ImagePullBackOff" in status["reason"] else None

    return eventually(backing_off, 30, what=f"the kubelet backs off pulling {name}'s image")


def _pull_secrets(obj: dict[str, Any]) -> list[str]:
    spec = obj["spec"]["template"]["spec"]
    return [ref["name"] for ref in spec.get("imagePullSecrets") or []]


def test_deploy_gives_exactly_the_matching_secrets_and_rolls_out(pulling_cluster: Cluster) -> None:
    cluster = pulling_cluster
    env = cluster.env
    cluster.delivered("shop", "shop-wrong", "web-alice", "wide-bob", "shop-quay")
    image = cluster.image(RUNNABLE)
    asked = len(cluster.registry.token_server.requests)
    created = env.admin.ok(
        "POST", SHOP, status=201, json={"name": "web", "image": image, "replicas": 2, "port": 8080}
    )
    # The namespace's, the project's and the cluster's credential for the registry, in the
    # kubelet's order; not shop's quay.io credential, not cart's credential.
    expected = ["shop-wrong", "web-alice", "wide-bob"]
    assert created["image_pull_secrets"] == expected
    assert [c["scope"] for c in created["credentials"]] == ["namespace", "project", "cluster"]
    assert created["missing_secrets"] == []
    live = cluster.deployment("shop", "web")
    assert _pull_secrets(live) == expected
    assert live["metadata"]["labels"] == {"app": "web"}
    assert live["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert live["spec"]["replicas"] == 2
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("web", image)
    assert container["ports"][0]["containerPort"] == 8080

    status = _settled(env, SHOP, "web", timeout=60)
    assert (status["state"], status["ready"], status["replicas"]) == ("ready", 2, 2)
    assert status["image_pull_secrets"] == expected
    assert status["diagnosis"] == []
    assert len(status["pods"]) == 2
    reasons = [e["reason"] for e in status["events"] if e["object"].startswith("Pod/")]
    assert reasons.count("Scheduled") == reasons.count("Pulled") == 2
    assert reasons.index("Scheduled") < reasons.index("Pulling") < reasons.index("Pulled")
    assert not [e for e in status["events"] if e["type"] == "Warning"]
    # For each pod the kubelet had containerd try the wrong password first (refused by the
    # token server), then alice's, which works; it never got to bob's. (The two pods pull at
    # once: their tries interleave.)
    tried = pulls_by_the_node(cluster.registry, asked)
    assert tried[0] == ("alice", 401) and ("alice", 200) in tried, tried
    assert {user for user, _ in tried} == {"alice"}
    assert [p["phase"] for p in status["pods"]] == ["Running", "Running"]
    available = {c["type"]: c["status"] for c in status["conditions"]}
    assert available == {"Available": "True", "Progressing": "True"}

    event = env.audit(action="workload.create")[0]
    assert event["object_id"] == live["metadata"]["uid"]
    assert event["after"]["image_pull_secrets"] == expected
    assert (event["after"]["namespace"], event["after"]["name"]) == ("shop", "web")


def test_a_deployment_shows_only_its_own_replicasets_pods_and_events(cluster: Cluster) -> None:
    """Deployment web beside web-api, on the real server: the controllers make a ReplicaSet
    and a (Pending) pod for each, and web-api's names start with `web-` too."""
    env = cluster.env
    image = cluster.image()
    for name in ("web", "web-api"):
        env.admin.ok("POST", SHOP, status=201, json={"name": name, "image": image})
    kube = cluster.kube
    sets = eventually(
        lambda: (
            {r["metadata"]["name"]: r for r in kube.objects("replicasets", "shop")}
            if len(kube.objects("replicasets", "shop")) == 2
            else None
        ),
        what="the deployment controller makes the ReplicaSets",
    )
    (web_set,) = [n for n in sets if not n.startswith("web-api-")]
    eventually(lambda: len(kube.objects("pods", "shop")) == 2, what="the pods")

    def shown() -> dict[str, Any] | None:
        status: dict[str, Any] = env.admin.ok("GET", f"{SHOP}/web")
        objects = {e["object"] for e in status["events"]}
        return status if len(status["pods"]) == 1 and f"ReplicaSet/{web_set}" in objects else None

    status = eventually(shown, what="web's pod and the events of its ReplicaSet")
    (pod,) = status["pods"]
    assert pod["name"].startswith(f"{web_set}-")
    objects = {e["object"] for e in status["events"]}
    assert objects <= {"Deployment/web", f"ReplicaSet/{web_set}", f"Pod/{pod['name']}"}
    assert "Deployment/web" in objects
    assert not [o for o in objects if "web-api" in o]
    assert status["state"] == "progressing"  # Pending: no kubelet runs here


def test_a_failed_pull_comes_with_the_events_and_the_servers_diagnosis(
    pulling_cluster: Cluster,
) -> None:
    cluster = pulling_cluster
    env = cluster.env
    cluster.delivered("cart", "cart-alice", "wide-bob")
    image = cluster.image(RUNNABLE)
    asked = len(cluster.registry.token_server.requests)
    created = env.admin.ok("POST", CART, status=201, json={"name": "api", "image": image})
    assert created["image_pull_secrets"] == ["cart-alice", "wide-bob"]

    status = _settled(env, CART, "api", timeout=60)
    assert status["state"] == "failed"
    assert "ErrImagePull" in status["reason"] or "ImagePullBackOff" in status["reason"]
    # The kubelet reports ErrImagePull, then, at its next sync, backs off.
    status = _backing_off(env, CART, "api")
    assert "ImagePullBackOff" in status["reason"]
    messages = [(e["reason"], e["message"]) for e in status["events"]]
    assert ("Failed", "Error: ErrImagePull") in messages
    assert ("BackOff", f'Back-off pulling image "{image}"') in messages
    assert ("Failed", "Error: ImagePullBackOff") in messages
    # One error per Secret the kubelet tried, in its order: alice's wrong password, then bob,
    # whose token does not reach team-a/pod.
    [failed] = {m for r, m in messages if m.startswith(f'Failed to pull image "{image}": [')}
    assert "unauthorized" in failed.lower()
    assert failed.index("401 Unauthorized") < failed.index("insufficient_scope")
    tried = pulls_by_the_node(cluster.registry, asked)
    assert tried[0] == ("alice", 401) and ("bob", 200) in tried, tried
    assert ("alice", 200) not in tried
    container = status["pods"][0]["containers"][0]
    assert container["reason"] == "ImagePullBackOff"
    assert container["message"].startswith(f'Back-off pulling image "{image}": ErrImagePull: [')

    # The server's own check, with the stored secrets, against the real registry.
    [diagnosis] = status["diagnosis"]
    assert (diagnosis["image"], diagnosis["ok"]) == (image, False)
    attempts = [(a["source"], a["cause"]) for a in diagnosis["check"]["attempts"]]
    assert attempts == [("cart-alice", "unauthorized"), ("wide-bob", "denied")]
    assert "wrong user name or password" in diagnosis["check"]["attempts"][0]["message"]
    assert diagnosis["cause"] == "denied"
    assert diagnosis["message"].startswith("wide-bob: ")
    assert "no access to team-a/pod" in diagnosis["message"]
    # The check is recorded on the credentials, as any check is.
    shown = env.admin.ok("GET", f"credentials/{cluster.creds['cart-alice']['id']}")
    assert shown["last_check"]["cause"] == "unauthorized"
    # Without diagnose, no check runs.
    assert env.admin.ok("GET", f"{CART}/api", params={"diagnose": "false"})["diagnosis"] == []


def test_an_image_that_is_not_there_is_diagnosed_as_not_found(pulling_cluster: Cluster) -> None:
    cluster = pulling_cluster
    env = cluster.env
    cluster.delivered("shop", "shop-wrong", "web-alice", "wide-bob")
    image = cluster.image("team-a/pod:no-such-tag")
    env.admin.ok("POST", SHOP, status=201, json={"name": "gone", "image": image})
    status = _settled(env, SHOP, "gone", timeout=60)
    assert status["state"] == "failed"
    failed = [e["message"] for e in status["events"] if e["message"].startswith("Failed to pull")]
    # The kubelet tried every Secret: the wrong password, alice's (the tag is not there), bob's.
    assert failed, status["events"]
    steps = ("401 Unauthorized", f" {image}: not found", "insufficient_scope")
    found = [failed[0].find(step) for step in steps]
    assert -1 not in found and found == sorted(found), failed[0]
    [diagnosis] = status["diagnosis"]
    assert diagnosis["cause"] == "not_found"
    assert [a["cause"] for a in diagnosis["check"]["attempts"]] == [
        "unauthorized",
        "not_found",
        "denied",
    ]


def test_several_containers_get_the_union_in_order(cluster: Cluster) -> None:
    env = cluster.env
    body = {
        "name": "duo",
        "containers": [
            {"image": "quay.io/team/proxy:1"},
            {"name": "app", "image": cluster.image()},
            {"name": "hub", "image": "nginx:1.27"},
        ],
        "replicas": 0,
    }
    created = env.admin.ok("POST", SHOP, status=201, json=body)
    assert created["image_pull_secrets"] == ["shop-quay", "shop-wrong", "web-alice", "wide-bob"]
    live = cluster.deployment("shop", "duo")
    names = [c["name"] for c in live["spec"]["template"]["spec"]["containers"]]
    assert names == ["duo", "app", "hub"]
    assert _settled(env, SHOP, "duo")["state"] == "ready"  # zero replicas: nothing to pull


def test_refusals(cluster: Cluster) -> None:
    env = cluster.env
    image = cluster.image()
    assert_error(
        env.admin.post(
            "clusters/c1/namespaces/nowhere/workloads", json={"name": "w", "image": image}
        ),
        404,
    )
    assert_error(
        env.admin.post(SHOP, json={"name": "w", "image": "Bad/Image"}),
        422,
        field="image",
        message="'Bad/Image'",
    )
    err = assert_error(
        env.admin.post(
            SHOP, json={"name": "w", "containers": [{"image": image}, {"image": "a//b"}]}
        ),
        422,
        field="containers[1].image",
    )
    assert "'a//b'" in err["message"]
    assert_error(
        env.admin.post(SHOP, json={"name": "Not_A_Name", "image": image}), 422, field="name"
    )
    assert_error(env.admin.post(SHOP, json={"name": "w"}), 422, field="image")
    assert_error(env.admin.post(SHOP, json={"name": "w", "image": image, "replicas": -1}), 422)
    env.admin.ok("POST", SHOP, status=201, json={"name": "taken", "image": image})
    assert_error(env.admin.post(SHOP, json={"name": "taken", "image": image}), 409, field="name")
    assert [d["metadata"]["name"] for d in cluster.kube.objects("deployments", "shop")] == ["taken"]
    assert_error(env.admin.get(f"{SHOP}/nothing"), 404)
    assert_error(env.admin.post(f"{SHOP}/cronjob/taken/attach"), 422, field="kind")
    assert_error(env.admin.post(f"{SHOP}/deployment/nothing/attach"), 404)


def test_who_may_deploy(cluster: Cluster) -> None:
    env = cluster.env
    image = cluster.image()
    tokens = {}
    for who, role in (
        ("owner", "owner"),
        ("member", "member"),
        ("viewer", "viewer"),
        ("other", None),
    ):
        _, tokens[who] = env.quick_user(who)
        if role:
            env.member("web", who, role)
    for who in ("owner", "member"):
        made = env.api(tokens[who]).ok(
            "POST", SHOP, status=201, json={"name": f"by-{who}", "image": image}
        )
        assert made["image_pull_secrets"] == ["shop-wrong", "web-alice", "wide-bob"]
    viewer = env.api(tokens["viewer"])
    assert_error(viewer.post(SHOP, json={"name": "by-viewer", "image": image}), 403)
    assert_error(viewer.post(f"{SHOP}/deployment/by-owner/attach"), 403)
    # A viewer may follow a rollout, but not run checks with the project's credentials.
    assert viewer.ok("GET", f"{SHOP}/by-owner")["name"] == "by-owner"
    # Someone outside the project does not see the namespace at all.
    assert_error(
        env.api(tokens["other"]).post(SHOP, json={"name": "by-other", "image": image}), 404
    )
    made = sorted(d["metadata"]["name"] for d in cluster.kube.objects("deployments", "shop"))
    assert made == ["by-member", "by-owner"]
    actors = sorted(e["actor"] for e in env.audit(action="workload.create"))
    assert actors == ["member", "owner"]


def _elsewhere(
    cluster: Cluster, name: str, secrets: list[str] | None, kind: str = "deployments"
) -> None:
    """A workload created without pullkeeper (kubectl, Helm, GitOps)."""
    spec: dict[str, Any] = {
        "initContainers": [{"name": "init", "image": "quay.io/team/init:1"}],
        "containers": [{"name": "app", "image": cluster.image()}],
    }
    if secrets is not None:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    obj = {
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }
    # What their controllers would have written by now (lightkube requires these fields).
    if kind == "statefulsets":
        obj["spec"]["serviceName"] = name
        obj["status"] = {"replicas": 0}
    elif kind == "daemonsets":
        del obj["spec"]["replicas"]
        obj["status"] = {
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberMisscheduled": 0,
            "numberReady": 0,
        }
    cluster.kube.create(kind, obj, namespace="shop")


def test_attach_adds_only_what_is_missing_and_keeps_the_rest(cluster: Cluster) -> None:
    env = cluster.env
    _elsewhere(cluster, "legacy", ["hand-made", "web-alice"])
    cluster.delivered("shop", "shop-quay", "shop-wrong", "web-alice", "wide-bob")
    kube = cluster.kube
    kube.reset_counts()
    result = env.admin.ok("POST", f"{SHOP}/deployment/legacy/attach")
    assert result["had"] == ["hand-made", "web-alice"]
    # quay.io for the init container, then the registry's in kubelet order, less web-alice.
    assert result["added"] == ["shop-quay", "shop-wrong", "wide-bob"]
    expected = ["hand-made", "web-alice", "shop-quay", "shop-wrong", "wide-bob"]
    assert result["image_pull_secrets"] == expected
    assert _pull_secrets(cluster.deployment("shop", "legacy")) == expected
    assert kube.count("patch", "deployments") >= 1  # again if the controller wrote meanwhile
    assert kube.count("write", "deployments") == kube.count("patch", "deployments")

    kube.reset_counts()
    again = env.admin.ok("POST", f"{SHOP}/deployments/legacy/attach")
    assert (again["added"], again["image_pull_secrets"]) == ([], expected)
    # (The controllers write the Deployment's status meanwhile: count pullkeeper's requests.)
    assert kube.count("get", "deployments") == 1
    assert kube.count("write", "deployments") == 0
    attached = env.audit(action="workload.attach")
    assert len(attached) == 1
    assert attached[0]["before"] == {"image_pull_secrets": ["hand-made", "web-alice"]}
    assert attached[0]["after"]["image_pull_secrets"] == expected


def test_attach_to_a_template_without_pull_secrets(cluster: Cluster) -> None:
    _elsewhere(cluster, "bare", None)
    result = cluster.env.admin.ok("POST", f"{SHOP}/deploy/bare/attach")
    assert result["had"] == []
    assert result["image_pull_secrets"] == ["shop-quay", "shop-wrong", "web-alice", "wide-bob"]
    assert _pull_secrets(cluster.deployment("shop", "bare")) == result["image_pull_secrets"]


def test_attach_to_statefulsets_and_daemonsets(cluster: Cluster) -> None:
    for kind, path in (("statefulsets", "statefulset"), ("daemonsets", "ds")):
        _elsewhere(cluster, f"one-{path}", ["wide-bob"], kind)
        result = cluster.env.admin.ok("POST", f"{SHOP}/{path}/one-{path}/attach")
        assert result["added"] == ["shop-quay", "shop-wrong", "web-alice"]
        stored = cluster.kube.get(kind, f"one-{path}", "shop")
        assert stored is not None
        assert _pull_secrets(stored) == ["wide-bob", "shop-quay", "shop-wrong", "web-alice"]


def test_a_cluster_without_usable_access_is_a_conflict_naming_it(cluster: Cluster) -> None:
    env = cluster.env
    env.cluster("c2", kubeconfig=str(cluster.env.data / "no-such-kubeconfig"))
    env.namespace("shop", cluster="c2")
    base = "clusters/c2/namespaces/shop/workloads"
    image = cluster.image()
    err = assert_error(
        env.admin.post(base, json={"name": "w", "image": image}), 409, field="cluster"
    )
    assert "cluster 'c2' cannot be reached with its access settings" in err["message"]
    assert_error(env.admin.get(f"{base}/w"), 409, field="cluster")
    assert_error(env.admin.post(f"{base}/deployment/w/attach"), 409, field="cluster")
    # A name no object can have is refused before the cluster is asked.
    assert_error(env.admin.get(f"{SHOP}/Not_A_Name"), 422, field="name")
