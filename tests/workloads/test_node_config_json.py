"""The real kubelet pulls with the config.json `pullkeeper node apply` wrote into its root
directory: a pod with no imagePullSecrets (and a ServiceAccount with none) runs an image
the registry gives only to alice, because the node's own login is alice's.

The node's config.json is written when the node starts (tests/kube/real.py: the kubelet
keeps what it read of it for 5 minutes), with one login, for images named
NODE_LOGIN_HOST/...; containerd reaches that name through a hosts.toml whose server is the
loopback token registry, as it reaches another name with no login there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.real import NODE_LOGIN_HOST, Node, RealCluster
from tests.registry.conftest import token_server  # noqa: F401
from tests.registry.servers import TokenRegistry
from tests.registry.token_server import TokenServer
from tests.workloads.conftest import RUNNABLE, eventually, make_namespaces, pulls_by_the_node

pytestmark = pytest.mark.integration

NAMESPACE = "node-logins"
NO_LOGIN_HOST = "no-login.pullkeeper.test"
PULL_FAILED = ("ErrImagePull", "ImagePullBackOff")


def pod(kube: RealCluster, node: Node, name: str, image: str) -> dict[str, Any]:
    """A pod of image with no imagePullSecrets, once its pull has worked or failed (nothing
    on the node before it: the pull reaches the registry); deleted after."""
    node.forget_images()
    kube.create(
        "pods",
        {"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image}]}},
        NAMESPACE,
    )

    def settled() -> dict[str, Any] | None:
        found = kube.get("pods", name, NAMESPACE)
        assert found is not None
        if found["status"].get("phase") == "Running":
            return found
        waiting = {
            (s.get("state") or {}).get("waiting", {}).get("reason")
            for s in found["status"].get("containerStatuses") or []
        }
        return found if waiting & set(PULL_FAILED) else None

    found = eventually(settled, timeout=60, what=f"pod {name} runs or fails its pull")
    assert "imagePullSecrets" not in found["spec"]
    kube.call(
        "DELETE",
        f"/api/v1/namespaces/{NAMESPACE}/pods/{name}",
        params={"gracePeriodSeconds": "0"},
    )
    return found


def test_a_pod_pulls_with_the_nodes_own_config_json(
    node: Node,
    real_kube: RealCluster,
    token_registry: TokenRegistry,
    token_server: TokenServer,  # noqa: F811
    runnable: str,
) -> None:
    for alias in (NODE_LOGIN_HOST, NO_LOGIN_HOST):
        node.trust(alias, token_registry.ca_file, server=token_registry.host)
    make_namespaces(real_kube, {NAMESPACE: None}, on_node=True)
    eventually(
        lambda: real_kube.objects("serviceaccounts", NAMESPACE), what="ServiceAccount default"
    )
    assert real_kube.objects("secrets", NAMESPACE) == []

    since = len(token_server.requests)
    ran = pod(real_kube, node, "with-login", f"{NODE_LOGIN_HOST}/{RUNNABLE}")
    assert ran["status"]["phase"] == "Running", ran["status"]
    # containerd logged in as alice: the login the kubelet read from the node's config.json.
    tried = pulls_by_the_node(token_registry, since)
    assert tried and set(tried) == {("alice", 200)}, tried

    # The same image under a name the node's config.json has no login for: anonymous, refused.
    since = len(token_server.requests)
    refused = pod(real_kube, node, "without-login", f"{NO_LOGIN_HOST}/{RUNNABLE}")
    assert refused["status"].get("phase") != "Running", refused["status"]
    asked = token_server.requests[since:]
    assert asked and {r.username for r in asked} == {None}, asked
