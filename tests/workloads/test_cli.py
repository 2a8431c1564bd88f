"""`pullkeeper deploy` and `pullkeeper attach` as a user runs them: the real executable against
a real `pullkeeper serve`, whose sync and checks reach the fake cluster and the real token
registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Result, assert_one_line_error, isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, Server, start_server
from tests.kube.fake_apiserver import FakeApiServer
from tests.registry.servers import TokenRegistry
from tests.workloads.conftest import WRONG_PASSWORD, Kubelet, eventually, start_fake, trust

pytestmark = pytest.mark.integration


@dataclass
class Setup:
    server: Server
    fake: FakeApiServer
    kubelet: Kubelet
    registry: TokenRegistry
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
) -> Iterator[Setup]:
    """shop (project web) is reached by web-alice (project) and wide-wrong (cluster, alice's
    name with a wrong password), in that order; lab (no project) by wide-wrong only."""
    base = tmp_path_factory.mktemp("workloads-cli")
    trust(base / "data", token_registry)
    fake, kubelet = start_fake(token_registry, {"shop": "web", "lab": None})
    server = start_server(base)
    try:
        kubeconfig = fake.kubeconfig(base / "kubeconfig")
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
        names = lambda ns: {s["metadata"]["name"] for s in fake.objects("secrets", ns)}  # noqa: E731
        eventually(lambda: {"web-alice", "wide-wrong"} <= names("shop"), what="shop's Secrets")
        eventually(lambda: "wide-wrong" in names("lab"), what="lab's Secret")
        yield Setup(server, fake, kubelet, token_registry, env)
    finally:
        server.stop()
        fake.stop()


def test_deploy_follows_the_rollout_until_ready(setup: Setup) -> None:
    image = setup.registry.ref("team-a/app:v1")
    result = setup.pk("deploy", "web", "--image", image, "-n", "shop", "--port", "8080")
    assert result.returncode == 0, result.describe()
    out = result.stdout
    assert "deployment web created in namespace shop of cluster prod (1 replica)" in out
    assert "imagePullSecrets: web-alice, wide-wrong" in out
    for reason in ("Scheduled", "Pulling", "Pulled", "Started"):
        assert f" {reason} " in out, out
    assert f'Pulling image "{image}"' in out
    assert out.rstrip().endswith("deployment web is ready: 1/1 replicas ready")
    live = setup.fake.get("deployments", "web", "shop")
    assert live is not None
    spec = live["spec"]["template"]["spec"]
    assert [r["name"] for r in spec["imagePullSecrets"]] == ["web-alice", "wide-wrong"]

    again = setup.pk("deploy", "web", "--image", image, "-n", "shop")
    assert "already exists" in assert_one_line_error(again)


def test_a_failed_pull_exits_1_with_the_diagnosis(setup: Setup) -> None:
    image = setup.registry.ref("team-a/app:v1")
    result = setup.pk("deploy", "api", "--image", image, "-n", "lab", "--cluster", "prod")
    assert result.returncode == 1, result.describe()
    out = result.stdout
    assert "imagePullSecrets: wide-wrong" in out
    assert f'Failed to pull image "{image}"' in out
    assert "Error: ImagePullBackOff" in out
    assert "deployment api failed:" in out
    diagnosis = out[out.index("pullkeeper's diagnosis") :]
    assert "wide-wrong" in diagnosis
    assert "wrong user name or password" in diagnosis
    assert "cannot pull" in diagnosis
    assert WRONG_PASSWORD not in out + result.stderr

    as_json = setup.pk("deploy", "api2", "--image", image, "-n", "lab", "-o", "json")
    assert as_json.returncode == 1, as_json.describe()
    final = json.loads(as_json.stdout)
    assert (final["state"], final["diagnosis"][0]["cause"]) == ("failed", "unauthorized")


def test_deploy_refusals_exit_2(setup: Setup) -> None:
    image = setup.registry.ref("team-a/app:v1")
    bad = setup.pk("deploy", "x", "--image", "Bad/Image", "-n", "shop")
    assert "'Bad/Image'" in assert_one_line_error(bad)
    nowhere = setup.pk("deploy", "x", "--image", image, "-n", "nowhere")
    assert "no namespace 'nowhere'" in assert_one_line_error(nowhere)
    no_time = setup.pk("deploy", "x", "--image", image, "-n", "shop", "--timeout", "0")
    assert no_time.returncode == 2
    assert "Invalid value for '--timeout'" in no_time.stderr
    assert setup.fake.get("deployments", "x", "shop") is None


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


def test_attach_adds_the_missing_secrets_once(setup: Setup) -> None:
    fake = setup.fake
    fake.create(
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
                        "containers": [
                            {"name": "app", "image": setup.registry.ref("team-a/app:v1")}
                        ],
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
    live = fake.get("deployments", "legacy", "shop")
    assert live is not None
    names = [r["name"] for r in live["spec"]["template"]["spec"]["imagePullSecrets"]]
    assert names == ["hand-made", "wide-wrong", "web-alice"]

    fake.reset_counts()
    second = setup.pk("attach", "-n", "shop", "deploy/legacy", "--cluster", "prod")
    assert second.returncode == 0, second.describe()
    assert second.stdout.splitlines()[0] == (
        "deployment/legacy: nothing to add; it has every Secret its images need"
    )
    assert fake.count("write", "deployments") == 0

    assert "KIND/NAME" in assert_one_line_error(setup.pk("attach", "-n", "shop", "legacy"))
    missing = setup.pk("attach", "-n", "shop", "statefulset/legacy")
    assert "no StatefulSet 'legacy'" in assert_one_line_error(missing)
