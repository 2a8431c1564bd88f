"""A credential renamed with `pullkeeper credential edit --name`: the sync delivers its Secret
under the new name only, so the workloads whose pods still name the old one lose it. The CLI
names them, and `attach`, as it says, gives each the new one. A real `pullkeeper serve` on the
real API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, start_server
from tests.kube.real import RealCluster
from tests.workloads.conftest import eventually, make_namespaces
from tests.workloads.test_cli import _api

pytestmark = pytest.mark.integration

IMAGE = "registry.example.com/team/app:v1"


def _template(app: str, secrets: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{"name": "app", "image": IMAGE}],
            "imagePullSecrets": [{"name": s} for s in secrets],
        },
    }


def _workload(kind: str, name: str, secrets: list[str]) -> tuple[str, dict[str, Any]]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": _template(name, secrets),
    }
    if kind == "statefulsets":
        spec["serviceName"] = name
    return kind, {"metadata": {"name": name}, "spec": spec}


def _pull_secrets(kube: RealCluster, namespace: str, name: str) -> list[str]:
    live = kube.get("deployments", name, namespace)
    assert live is not None
    return [s["name"] for s in live["spec"]["template"]["spec"].get("imagePullSecrets", [])]


def test_a_rename_names_the_workloads_that_still_name_the_old_secret(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    make_namespaces(real_kube, {"shop": "web", "lab": None})
    server = start_server(tmp_path / "server")
    try:
        kubeconfig = real_kube.kubeconfig(tmp_path / "kubeconfig")
        _api(server, "POST", "clusters", {"name": "prod", "kubeconfig": str(kubeconfig)})
        web = _api(server, "POST", "projects", {"name": "web", "cluster": "prod"})
        _api(server, "PUT", "clusters/prod/namespaces/shop", {"project": web["id"]})
        _api(server, "PUT", "clusters/prod/namespaces/lab", {"project": None})
        body = {
            "name": "team-pull",
            "cluster": "prod",
            "scope": "project",
            "project": web["id"],
            "provider": "custom",
            "server": "registry.example.com",
            "username": "robot",
            "password": "s3cret-Rn9",
        }
        _api(server, "POST", "credentials", body)

        def secrets() -> set[str]:
            return {s["metadata"]["name"] for s in real_kube.objects("secrets", "shop")}

        eventually(lambda: "team-pull" in secrets(), what="shop's Secret")
        for namespace, (kind, obj) in [
            ("shop", _workload("deployments", "web", ["team-pull"])),
            ("shop", _workload("statefulsets", "db", ["other", "team-pull"])),
            ("shop", _workload("deployments", "plain", [])),
            ("shop", _workload("daemonsets", "agent", ["other"])),
            # Named there too, but the credential never reached lab: not its doing.
            ("lab", _workload("daemonsets", "probe", ["team-pull"])),
        ]:
            real_kube.create(kind, obj, namespace=namespace)

        env = isolated_env(
            tmp_path / "home", {"PULLKEEPER_SERVER": server.url, "PULLKEEPER_TOKEN": ADMIN_TOKEN}
        )
        renamed = pk("credential", "edit", "team-pull", "--name", "team-registry", env=env)
        assert renamed.returncode == 0, renamed.describe()
        assert renamed.stdout == "credential team-registry updated\n"
        assert renamed.stderr == (
            "warning: 2 workloads still name the Secret team-pull, which is no longer delivered "
            "(it is team-registry now): deployment/web in shop, statefulset/db in shop; give "
            "each the new one with `pullkeeper attach KIND/NAME -n NAMESPACE --cluster prod`\n"
        )
        assert "s3cret-Rn9" not in renamed.stdout + renamed.stderr

        # What the warning says to do gives the workload the new Secret, keeping the old name.
        # The sync delivers the Secret under its new name only: the old one's pulls lose it.
        eventually(lambda: "team-registry" in secrets(), what="the renamed Secret")
        eventually(lambda: "team-pull" not in secrets(), what="the old Secret removed")
        attached = pk("attach", "deployment/web", "-n", "shop", "--cluster", "prod", env=env)
        assert attached.returncode == 0, attached.describe()
        assert _pull_secrets(real_kube, "shop", "web") == ["team-pull", "team-registry"]

        # Renamed again: web names the Secret it had, and is the one named.
        again = pk("credential", "edit", "team-registry", "--name", "team-reg", env=env)
        assert again.returncode == 0, again.describe()
        assert again.stderr == (
            "warning: 1 workload still names the Secret team-registry, which is no longer "
            "delivered (it is team-reg now): deployment/web in shop; give each the new one "
            "with `pullkeeper attach KIND/NAME -n NAMESPACE --cluster prod`\n"
        )
        # Not a rename: nothing to check.
        same = pk("credential", "edit", "team-reg", "--description", "robot", env=env)
        assert (same.returncode, same.stderr) == (0, ""), same.describe()
    finally:
        server.stop()
