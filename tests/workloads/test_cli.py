"""`pullkeeper deploy` and `pullkeeper attach` as a user runs them: the real executable against
a real `pullkeeper serve`, whose sync and checks reach the real API server and the real token
registry; the pods run on the real node, whose kubelet pulls with the Secrets it is given."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Result, assert_one_line_error, isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, Server, start_server
from tests.kube.real import ControlPlane, Node, RealCluster
from tests.registry.servers import TokenRegistry
from tests.workloads.conftest import (
    WRONG_PASSWORD,
    eventually,
    make_namespaces,
    pulls_by_the_node,
    trust,
)

pytestmark = pytest.mark.integration

# Bounded: a rollout on the node is ready in seconds; `pk` gives up after 60.
WAIT = "45"


@dataclass
class Setup:
    server: Server
    kube: RealCluster
    node: Node
    registry: TokenRegistry
    runnable: str  # an image alice may pull and the node can run
    env: dict[str, str]

    def pk(self, *args: str) -> Result:
        result = pk(*args, env=self.env)
        assert "Traceback" not in result.stderr, result.describe()
        return result


def _api(server: Server, method: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.request(
        method,
        f"{server.url}/api/v1/{path}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.is_success, response.text
    return response.json()


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    token_registry: TokenRegistry,
    control_plane: ControlPlane,
    node: Node,
    runnable: str,
) -> Iterator[Setup]:
    """shop (project web) is reached by web-alice (project) and wide-wrong (cluster, alice's
    name with a wrong password), in that order; lab (no project) by wide-wrong only. Both
    namespaces' pods run on the node, which has no image pulled yet. What the module made in
    the cluster goes afterwards, as `real_kube`'s does."""
    base = tmp_path_factory.mktemp("workloads-cli")
    trust(base / "data", token_registry)
    kube = RealCluster(control_plane)
    kube.settle()
    node.forget_images()
    server = None
    try:
        make_namespaces(kube, {"shop": "web", "lab": None}, on_node=True)
        server = start_server(base)
        kubeconfig = kube.kubeconfig(base / "kubeconfig")
        _api(server, "POST", "clusters", {"name": "prod", "kubeconfig": str(kubeconfig)})
        web = _api(server, "POST", "projects", {"name": "web", "cluster": "prod"})
        _api(server, "PUT", "clusters/prod/namespaces/shop", {"project": web["id"]})
        _api(server, "PUT", "clusters/prod/namespaces/lab", {"project": None})
        alice, host = token_registry.alice, token_registry.host
        for name, scope, password in (
            ("web-alice", "project", alice.password),
            ("wide-wrong", "cluster", WRONG_PASSWORD),
        ):
            body = {
                "name": name,
                "cluster": "prod",
                "scope": scope,
                "provider": "custom",
                "server": host,
                "username": alice.username,
                "password": password,
            }
            if scope == "project":
                body["project"] = web["id"]
            _api(server, "POST", "credentials", body)
        env = isolated_env(
            base / "home", {"PULLKEEPER_SERVER": server.url, "PULLKEEPER_TOKEN": ADMIN_TOKEN}
        )
        names = lambda ns: {s["metadata"]["name"] for s in kube.objects("secrets", ns)}  # noqa: E731
        eventually(lambda: {"web-alice", "wide-wrong"} <= names("shop"), what="shop's Secrets")
        eventually(lambda: "wide-wrong" in names("lab"), what="lab's Secret")
        yield Setup(server, kube, node, token_registry, runnable, env)
    finally:
        if server is not None:
            server.stop()  # before the cleanup: its sync would write again
        kube.cleanup()


def _pods(kube: RealCluster, namespace: str, app: str) -> list[dict[str, Any]]:
    return [
        p
        for p in kube.objects("pods", namespace)
        if (p["metadata"].get("labels") or {}).get("app") == app
    ]


def test_deploy_follows_the_rollout_until_ready(setup: Setup) -> None:
    image = setup.runnable
    asked = len(setup.registry.token_server.requests)
    result = setup.pk(
        "deploy", "web", "--image", image, "-n", "shop", "--port", "8080", "--timeout", WAIT
    )
    assert result.returncode == 0, result.describe()
    out = result.stdout
    assert "deployment web created in namespace shop of cluster prod (1 replica)" in out
    assert "imagePullSecrets: web-alice, wide-wrong" in out
    for reason in ("Scheduled", "Pulling", "Pulled", "Started"):
        assert f" {reason} " in out, out
    assert f'Pulling image "{image}"' in out
    assert f'Successfully pulled image "{image}"' in out
    assert out.rstrip().endswith("deployment web is ready: 1/1 replicas ready")
    live = setup.kube.get("deployments", "web", "shop")
    assert live is not None
    spec = live["spec"]["template"]["spec"]
    assert [r["name"] for r in spec["imagePullSecrets"]] == ["web-alice", "wide-wrong"]
    # A real pod runs on the node, pulled by containerd with web-alice's login (alice, the
    # right password), the first the kubelet tried: it never needed wide-wrong's.
    [pod] = _pods(setup.kube, "shop", "web")
    assert (pod["spec"]["nodeName"], pod["status"]["phase"]) == ("localhost", "Running")
    tried = pulls_by_the_node(setup.registry, asked)
    assert tried and set(tried) == {("alice", 200)}, tried

    again = setup.pk("deploy", "web", "--image", image, "-n", "shop")
    assert "already exists" in assert_one_line_error(again)


def test_a_failed_pull_exits_1_with_the_diagnosis(setup: Setup) -> None:
    image = setup.runnable
    setup.node.forget_images()  # the pull must reach the registry (shop's pod may have run it)
    asked = len(setup.registry.token_server.requests)
    result = setup.pk(
        "deploy", "api", "--image", image, "-n", "lab", "--cluster", "prod", "--timeout", WAIT
    )
    assert result.returncode == 1, result.describe()
    out = result.stdout
    assert "imagePullSecrets: wide-wrong" in out
    # The real kubelet's events: one error for the one Secret it tried, then ErrImagePull.
    assert f'Failed to pull image "{image}": ' in out
    assert "401 Unauthorized" in out
    assert "Error: ErrImagePull" in out
    # The CLI ends at the first poll whose pod reports a pull failure: ErrImagePull, the
    # container's first waiting reason. (The kubelet's BackOff and `Error: ImagePullBackOff`
    # events, a second later, are often in by then, but need not be; on a slow poll the pod
    # may already be backing off.)
    verdict = re.search(rf"^deployment api failed: {re.escape(image)}: (\w+)$", out, re.M)
    assert verdict is not None and verdict[1] in ("ErrImagePull", "ImagePullBackOff"), out
    diagnosis = out[out.index("pullkeeper's diagnosis") :]
    assert "wide-wrong" in diagnosis
    assert "wrong user name or password" in diagnosis
    assert "cannot pull" in diagnosis
    assert WRONG_PASSWORD not in out + result.stderr
    # containerd tried wide-wrong's login (alice, the wrong password): refused.
    tried = pulls_by_the_node(setup.registry, asked)
    assert tried and set(tried) == {("alice", 401)}, tried
    [pod] = _pods(setup.kube, "lab", "api")
    assert pod["status"]["phase"] == "Pending"

    as_json = setup.pk("deploy", "api2", "--image", image, "-n", "lab", "-o", "json")
    assert as_json.returncode == 1, as_json.describe()
    final = json.loads(as_json.stdout)
    assert (final["state"], final["diagnosis"][0]["cause"]) == ("failed", "unauthorized")
    assert final["reason"] in (f"{image}: ErrImagePull", f"{image}: ImagePullBackOff")


def test_deploy_refusals_exit_2(setup: Setup) -> None:
    image = setup.runnable
    bad = setup.pk("deploy", "x", "--image", "Bad/Image", "-n", "shop")
    assert "'Bad/Image'" in assert_one_line_error(bad)
    nowhere = setup.pk("deploy", "x", "--image", image, "-n", "nowhere")
    assert "no namespace 'nowhere'" in assert_one_line_error(nowhere)
    no_time = setup.pk("deploy", "x", "--image", image, "-n", "shop", "--timeout", "0")
    assert no_time.returncode == 2
    assert "Invalid value for '--timeout'" in no_time.stderr
    assert setup.kube.get("deployments", "x", "shop") is None


def test_no_wait_prints_what_was_created(setup: Setup) -> None:
    image = setup.registry.ref("team-b/other:v1")
    result = setup.pk(
        "deploy",
        "quick",
        "--image",
        image,
        "-n",
        "shop",
        "--no-wait",
        "--replicas",
        "0",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.describe()
    created = json.loads(result.stdout)
    assert created["image_pull_secrets"] == ["web-alice", "wide-wrong"]
    assert created["replicas"] == 0
    live = setup.kube.get("deployments", "quick", "shop")
    assert live is not None
    spec = live["spec"]["template"]["spec"]
    assert [r["name"] for r in spec["imagePullSecrets"]] == ["web-alice", "wide-wrong"]


def test_attach_adds_the_missing_secrets_once(setup: Setup) -> None:
    kube = setup.kube
    kube.create(
        "deployments",
        {
            "metadata": {"name": "legacy", "namespace": "shop"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "legacy"}},
                "template": {
                    "metadata": {"labels": {"app": "legacy"}},
                    "spec": {
                        "imagePullSecrets": [{"name": "hand-made"}, {"name": "wide-wrong"}],
                        "containers": [{"name": "app", "image": setup.runnable}],
                    },
                },
            },
        },
    )
    first = setup.pk("attach", "-n", "shop", "deployment/legacy")
    assert first.returncode == 0, first.describe()
    assert first.stdout.splitlines() == [
        "deployment/legacy: added web-alice",
        "imagePullSecrets: hand-made, wide-wrong, web-alice",
    ]
    live = kube.get("deployments", "legacy", "shop")
    assert live is not None
    names = [r["name"] for r in live["spec"]["template"]["spec"]["imagePullSecrets"]]
    assert names == ["hand-made", "wide-wrong", "web-alice"]

    kube.reset_counts()
    second = setup.pk("attach", "-n", "shop", "deploy/legacy", "--cluster", "prod")
    assert second.returncode == 0, second.describe()
    assert second.stdout.splitlines()[0] == (
        "deployment/legacy: nothing to add; it has every Secret its images need"
    )
    # The API server's audit log: pullkeeper read the Deployment and wrote nothing to it
    # (the controllers write its status meanwhile: those are not pullkeeper's requests).
    assert kube.count("get", "deployments") == 1
    assert kube.count("write", "deployments") == 0

    assert "KIND/NAME" in assert_one_line_error(setup.pk("attach", "-n", "shop", "legacy"))
    missing = setup.pk("attach", "-n", "shop", "statefulset/legacy")
    assert "no StatefulSet 'legacy'" in assert_one_line_error(missing)
