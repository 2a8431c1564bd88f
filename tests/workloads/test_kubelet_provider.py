"""The real kubelet pulls through `pullkeeper kubelet-credential-provider`: a pod with no
imagePullSecrets (and a ServiceAccount with none) runs an image from a registry that takes
only the cloud's current ECR token, because the kubelet asks pullkeeper for it.

The image is named as ECR's (`123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1`), which
the node's provider configuration matches (scripts/kube node-up), and containerd reaches
that name through a hosts.toml whose server is the loopback token registry. The kubelet
keys what the provider answers by the image's host, and hands it to containerd with no
server address; containerd's CRI (1.6) then gives it to every host it tries for that image,
the loopback registry included (`ParseAuth` filters by host only when the kubelet names
one). The registry's token server takes user AWS with the ECR stand-in's newest token only.

The provider runs in `--server` mode against a pullkeeper server (the API in-process,
served over HTTP on loopback for the provider's process) holding cluster c1's ECR
credential of cluster scope, with a node token of c1.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn

from pullkeeper.services.token_refresh import Refresher
from tests.cloud.aws import Aws
from tests.kube.real import Node, RealCluster
from tests.registry.conftest import token_server  # noqa: F401
from tests.registry.servers import TokenRegistry
from tests.registry.token_server import Grant, TokenServer
from tests.server.conftest import Env
from tests.server.test_cloud_credentials import (  # noqa: F401
    ADMIN_KEY,
    ECR,
    Clock,
    at,
    cloud,
    ecr_body,
)
from tests.workloads.conftest import eventually, make_namespaces, pulls_by_the_node

pytestmark = pytest.mark.integration

REPOSITORY = "app"
IMAGE = f"{ECR}/{REPOSITORY}:v1"
NAMESPACE = "ecr-pods"
PULL_FAILED = ("ErrImagePull", "ImagePullBackOff")


@dataclass
class EcrNode:
    env: Env
    cloud: Aws
    kube: RealCluster
    node: Node
    registry: TokenRegistry
    credential: dict[str, Any]
    provider_args: list[str]  # --server mode, with c1's node token
    pushed: int  # the token server's requests until IMAGE was pushed

    def pod(self, name: str, image: str = IMAGE) -> dict[str, Any]:
        """A pod of IMAGE (or another tag of its repository) with no imagePullSecrets, once
        its pull has worked or failed. The node has no image pulled before it: the pull
        reaches the registry."""
        self.node.forget_images()
        self.kube.create(
            "pods",
            {
                "metadata": {"name": name},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            NAMESPACE,
        )

        def settled() -> dict[str, Any] | None:
            pod = self.kube.get("pods", name, NAMESPACE)
            assert pod is not None
            if pod["status"].get("phase") == "Running":
                return pod
            waiting = [
                (s.get("state") or {}).get("waiting", {}).get("reason")
                for s in pod["status"].get("containerStatuses") or []
            ]
            return pod if set(waiting) & set(PULL_FAILED) else None

        pod = eventually(settled, timeout=60, what=f"pod {name} runs or fails its pull")
        assert pod["spec"]["nodeName"] == "localhost"
        assert "imagePullSecrets" not in pod["spec"]
        return pod

    def failed_pull(self, name: str) -> str:
        """The kubelet's Failed event for the pod's pull; the pod is deleted at once, so
        its retries do not reach the registry during what the test does next."""

        def event() -> str | None:
            for e in self.kube.objects("events", NAMESPACE):
                said = e.get("message") or ""
                if e["involvedObject"]["name"] == name and said.startswith("Failed to pull"):
                    return str(said)
            return None

        said = eventually(event, timeout=20, what=f"the Failed event of pod {name}")
        self.remove(name)
        return said

    def remove(self, name: str) -> None:
        """The pod goes at once (no grace period)."""
        self.kube.call(
            "DELETE",
            f"/api/v1/namespaces/{NAMESPACE}/pods/{name}",
            params={"gracePeriodSeconds": "0"},
        )

    def delivered(self) -> str:
        """The password the server delivers for the ECR credential now."""
        [(username, password, _)] = self.env.secret(self.credential["id"]).values()
        assert username == "AWS"
        return password


@contextmanager
def served(env: Env) -> Iterator[str]:
    """The server's API over HTTP on 127.0.0.1, for the provider's process to reach (the
    env's own client is in-process). Its lifespan is the env's: nothing else starts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    http = uvicorn.Server(uvicorn.Config(env.app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: http.started, what="the API served on loopback")
        yield f"http://127.0.0.1:{port}"
    finally:
        http.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def ecr_node(
    env: Env,
    cloud: Aws,  # noqa: F811
    token_registry: TokenRegistry,
    token_server: TokenServer,  # noqa: F811
    real_kube: RealCluster,
    node: Node,
    tmp_path: Path,
) -> Iterator[EcrNode]:
    """IMAGE in the token registry, which takes user AWS with the cloud's newest token only
    (and lets it pull REPOSITORY); cluster c1 on the server with an ECR credential of cluster
    scope and a node token; namespace NAMESPACE, whose pods run on the node, with no Secrets.
    The provider answers nothing until a test gives it `provider_args`, and again after."""
    for tag in ("v1", "v2"):
        copied = token_registry.skopeo(
            "copy",
            "--quiet",
            *token_registry.tls_args("dest-"),
            "--dest-creds",
            token_registry.seeder.creds,
            f"oci:{node.busybox}:v1",
            f"docker://{token_registry.ref(f'{REPOSITORY}:{tag}')}",
        )
        assert copied.returncode == 0, copied.describe()
    pushed = len(token_server.requests)
    node.trust(ECR, token_registry.ca_file, server=token_registry.host)
    token_server.accept(
        "AWS",
        lambda: cloud.issued[-1] if cloud.issued else None,
        [
            Grant(
                user="AWS",
                resource_type="repository",
                pattern=REPOSITORY,
                actions=frozenset({"pull"}),
            )
        ],
    )
    credential = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    issued = env.admin.ok("POST", "clusters/c1/node-tokens", status=201, json={"name": "node"})
    token_file = tmp_path / "node-token"
    token_file.write_text(issued["token"] + "\n")
    token_file.chmod(0o600)
    make_namespaces(real_kube, {NAMESPACE: None}, on_node=True)
    # A pod is refused until the controller has made the namespace's ServiceAccount.
    eventually(
        lambda: real_kube.objects("serviceaccounts", NAMESPACE), what="ServiceAccount default"
    )
    with served(env) as url:
        # --cache-duration 0: the kubelet asks at every pull. Its cache would otherwise keep
        # an answer for ECR's registry past this test's server (the node is the session's),
        # and give the token it cached instead of asking for the refreshed one.
        args = ["--server", url, "--cluster", "c1", "--token-file", str(token_file)]
        args += ["--cache-duration", "0"]
        try:
            yield EcrNode(env, cloud, real_kube, node, token_registry, credential, args, pushed)
        finally:
            node.provide(None)


def test_with_no_answer_from_the_provider_the_pod_cannot_pull(ecr_node: EcrNode) -> None:
    runs = ecr_node.node.provider_runs()
    pod = ecr_node.pod("no-answer")
    assert pod["status"]["phase"] == "Pending"
    said = ecr_node.failed_pull("no-answer")
    assert f'Failed to pull image "{IMAGE}": ' in said
    assert said.endswith("insufficient_scope: authorization failed"), said
    # The kubelet asked the provider, which answered no credentials: containerd asked the
    # registry's token server anonymously, and was granted nothing.
    assert ecr_node.node.provider_runs() > runs
    asked = ecr_node.registry.token_server.requests[ecr_node.pushed :]
    assert asked, "containerd never asked the token server"
    assert {(r.username, a.actions) for r in asked for a in r.granted} == {(None, ())}, asked


def test_a_pod_with_no_pull_secrets_pulls_with_the_current_cloud_token(
    ecr_node: EcrNode,
) -> None:
    kube, node, registry, aws = ecr_node.kube, ecr_node.node, ecr_node.registry, ecr_node.cloud
    [account] = kube.objects("serviceaccounts", NAMESPACE)
    assert account["metadata"]["name"] == "default" and not account.get("imagePullSecrets")
    assert kube.objects("secrets", NAMESPACE) == []
    node.provide(ecr_node.provider_args)

    runs = node.provider_runs()
    pod = ecr_node.pod("current")
    assert pod["status"]["phase"] == "Running", pod["status"]
    assert node.provider_runs() > runs
    # containerd logged in as AWS with the server's token, the cloud's newest: taken.
    first = ecr_node.delivered()
    assert first == aws.issued[-1]
    tried = pulls_by_the_node(registry, 0)
    assert tried and set(tried) == {("AWS", 200)}, tried
    ecr_node.remove("current")

    # The cloud issues a newer token elsewhere: the server's is refused now, as an expired
    # one would be, and the pod cannot pull.
    ecr = boto3.session.Session(*ADMIN_KEY, region_name="eu-west-1").client(
        "ecr", endpoint_url=aws.url
    )
    ecr.get_authorization_token()
    assert aws.issued[-1] != first == ecr_node.delivered()
    since = len(registry.token_server.requests)
    ecr_node.pod("stale")
    said = ecr_node.failed_pull("stale")
    assert "401 Unauthorized" in said, said
    tried = pulls_by_the_node(registry, since)
    assert tried and set(tried) == {("AWS", 401)}, tried

    # The refresher makes the credential's next token (its clock at the refresh time): the
    # kubelet asks the provider again, and a new pod pulls with it.
    runs = node.provider_runs()
    clock = Clock(at(ecr_node.credential["identity"]["token"]["refresh_at"]))
    refresher = Refresher(ecr_node.env.server, clock=clock, leading=lambda: True)
    assert refresher.run_once() == {"refreshed": 1}
    assert ecr_node.delivered() == aws.issued[-1] != first
    since = len(registry.token_server.requests)
    # Another tag: a retry of the stale pod's pull still in flight at the kubelet cannot put
    # this pod's image on the node before it asks.
    pod = ecr_node.pod("refreshed", IMAGE.replace(":v1", ":v2"))
    assert pod["status"]["phase"] == "Running", pod["status"]
    # The registry took the refreshed token, which only the provider gives (a late retry of
    # the stale pod may be the run that fetched it: runs are counted from the refresh on).
    tried = pulls_by_the_node(registry, since)
    assert tried and set(tried) == {("AWS", 200)}, (tried, node.ctr("images", "ls", "-q"))
    assert node.provider_runs() > runs
