"""`pullkeeper credential status` and `--adopt` through a real `pullkeeper serve` syncing the
real cluster."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, start_server
from tests.kube.real import RealCluster
from tests.sync.conftest import eventually


def test_status_and_adopt_from_the_command_line(tmp_path: Path, real_kube: RealCluster) -> None:
    kube = real_kube
    kube.create("namespaces", {"metadata": {"name": "shop"}})
    theirs = {"metadata": {"name": "pull", "namespace": "shop"}, "type": "Opaque"}
    kube.create("secrets", {**theirs, "data": {"x": "eQ=="}})
    server = start_server(tmp_path / "server")
    try:
        env = isolated_env(tmp_path / "home")
        env.update(PULLKEEPER_SERVER=server.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)

        def run(*args: str, stdin: str | None = None) -> str:
            result = pk(*args, env=env, stdin=stdin)
            assert result.returncode == 0, result.describe()
            return result.stdout

        kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
        run("cluster", "create", "prod", "--kubeconfig", str(kubeconfig))
        run(
            "credential", "create", "pull", "--cluster", "prod", "--scope", "cluster",
            "--provider", "quay", "--username", "robot", "--password-stdin",
            stdin="a-token-4411\n",
        )  # fmt: skip

        def status() -> str:
            return run("credential", "status", "pull")

        def settled() -> str | None:
            out = status()
            return out if "conflict" in out and "in_sync" in out else None

        shown = eventually(settled, what="one Secret delivered, one conflict")
        lines = shown.splitlines()
        assert lines[0].split() == [
            "CLUSTER",
            "NAMESPACE",
            "SECRET",
            "STATE",
            "REASON",
            "SINCE",
        ]
        default = next(line for line in lines if line.startswith("prod     default"))
        assert default.split()[3] == "in_sync"
        shop = next(line for line in lines if line.startswith("prod     shop"))
        assert "conflict" in shop and "did not create" in shop
        assert lines[-1] == "1 in sync, 1 conflict"
        assert kube.get("secrets", "pull", "shop")["type"] == "Opaque"  # type: ignore[index]

        run("credential", "edit", "pull", "--adopt")
        eventually(lambda: status().splitlines()[-1] == "2 in sync", what="adopted")
        adopted = kube.get("secrets", "pull", "shop")
        assert adopted is not None and adopted["type"] == "kubernetes.io/dockerconfigjson"
        as_json = pk("credential", "status", "pull", "-o", "json", env=env).json()
        assert {i["namespace"]: i["state"] for i in as_json["items"]} == {
            "default": "in_sync",
            "shop": "in_sync",
        }
        assert "a-token-4411" not in status()
    finally:
        server.stop()
