"""Node profiles from a real `pullkeeper serve`: an admin keeps them with `node profile`, a
node with a node token applies its profile once (`node apply --server`) or keeps it so
(`node agent`, re-applying what changes on the server and reporting applied, drifted or
failed), its labels read from its Node on a real Kubernetes API server."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pullkeeper.core.dockerconfig import parse_config_json
from pullkeeper.core.keyring import Keyring
from tests.kube.real import RealCluster
from tests.registry import pki

from .conftest import assert_one_line_error
from .test_cli_server import ADMIN_TOKEN, PULLKEEPER, Cli, Server, User, start_server

pytestmark = pytest.mark.integration

QUAY_PASSWORD = "quay-node-agent-Pw47!"
HOSTS = "etc/containerd/certs.d"


@dataclass
class Desk:
    server: Server
    cli: Cli
    admin: User
    token_file: Path
    ca_pem: str


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    base = tmp_path_factory.mktemp("pknode-agent")
    server = start_server(base / "server")
    try:
        cli = Cli(server, base)
        cli.secrets |= {ADMIN_TOKEN, QUAY_PASSWORD}
        admin = cli.user("admin")
        admin.env.update(PULLKEEPER_SERVER=server.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)
        cli.ok(admin, "cluster", "create", "prod")
        cli.ok(
            admin,
            *("credential", "create", "quay", "--cluster", "prod", "--scope", "cluster"),
            *("--provider", "quay", "--username", "prod+bot", "--password-stdin"),
            stdin=QUAY_PASSWORD,
        )
        issued = cli.json(admin, "cluster", "node-token", "create", "prod", reveal=True)
        cli.secrets.add(issued["token"])
        token_file = base / "node-token"
        token_file.write_text(issued["token"] + "\n")
        ca = pki.certificate_authority(base / "ca", "Corp Registry CA")
        yield Desk(server, cli, admin, token_file, Path(ca.cert_file).read_text())
    finally:
        server.stop()


def node_args(desk: Desk, root: Path, *extra: str) -> list[str]:
    return [
        *("--server", desk.server.url, "--token-file", str(desk.token_file)),
        *("--cluster", "prod", "--root", str(root)),
        *("--runtime", "containerd", "--runtime", "kubelet"),
        *extra,
    ]


def profile_file(path: Path, registries: list[dict[str, Any]], **more: Any) -> Path:
    path.write_text(yaml.safe_dump({"registries": registries, **more}))
    return path


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.2)


def states(desk: Desk) -> dict[str, dict[str, Any]]:
    items = desk.cli.json(desk.admin, "node", "status", "--cluster", "prod")["items"]
    return {s["node"]: s for s in items}


def login_of(root: Path, image: str) -> tuple[str, str]:
    path = root / "var/lib/kubelet/config.json"
    assert path.stat().st_mode & 0o777 == 0o600
    keyring = Keyring()
    for key, entry in parse_config_json(path.read_bytes()).auths.items():
        keyring.add([(key, entry)], key)
    (found, *_) = keyring.lookup(image)
    return found.username, found.password


def test_profiles_are_kept_with_the_cli_and_a_node_applies_its_own(
    desk: Desk, tmp_path: Path
) -> None:
    cli, admin = desk.cli, desk.admin
    registries = [
        {"host": "registry.corp.example:5000", "ca": desk.ca_pem},
        {"host": "lab.corp.example", "insecure": "http"},
    ]
    given = profile_file(tmp_path / "base.yaml", registries)
    cli.ok(admin, "node", "profile", "create", "base", "--cluster", "prod", "--file", str(given))
    cli.ok(
        admin,
        *("node", "profile", "create", "gpu", "--cluster", "prod", "--selector", "pool=gpu"),
        *("--file", str(given), "--credential", "quay"),
    )
    listed = cli.ok(admin, "node", "profile", "list", "--cluster", "prod").stdout
    assert "pool=gpu" in listed and "(every node)" in listed
    # What `show -o yaml` prints is what `create --file` reads.
    shown = cli.ok(admin, "node", "profile", "show", "gpu", "--cluster", "prod", "-o", "yaml")
    (tmp_path / "shown.yaml").write_text(shown.stdout)
    cli.ok(admin, "node", "profile", "delete", "gpu", "--cluster", "prod")
    cli.ok(
        admin,
        *("node", "profile", "create", "gpu", "--cluster", "prod"),
        *("--file", str(tmp_path / "shown.yaml")),
    )

    root = tmp_path / "node"
    applied = cli.ok(
        admin,
        "node",
        "apply",
        *node_args(desk, root, "--node-name", "gpu-1", "--node-labels", "pool=gpu"),
    )
    assert f"created /{HOSTS}/registry.corp.example:5000/hosts.toml" in applied.stdout
    assert (root / HOSTS / "registry.corp.example:5000/ca.crt").read_text() == desk.ca_pem
    assert login_of(root, "quay.io/team/app") == ("prod+bot", QUAY_PASSWORD)
    again = cli.ok(
        admin,
        "node",
        "apply",
        *node_args(desk, root, "--node-name", "gpu-1", "--node-labels", "pool=gpu"),
    )
    assert again.stdout.startswith("nothing to change")
    assert states(desk)["gpu-1"]["state"] == "applied"
    assert states(desk)["gpu-1"]["profile"] == "gpu"
    # A node the selector does not pick gets the base profile: no logins.
    other = tmp_path / "other"
    cli.ok(admin, "node", "apply", *node_args(desk, other, "--node-name", "cpu-1"))
    assert not (other / "var/lib/kubelet/config.json").exists()
    assert (other / HOSTS / "lab.corp.example/hosts.toml").is_file()
    # diff says whether anything would change (exit status 1 when it would).
    args = node_args(desk, other, "--node-name", "cpu-1", "--node-labels", "pool=gpu")
    changed = cli.run(admin, "node", "diff", *args)
    assert changed.returncode == 1 and "config.json" in changed.stdout
    rendered = cli.ok(admin, "node", "render", *args).stdout
    assert QUAY_PASSWORD not in rendered and "--show-secrets" in rendered


def test_a_node_that_cannot_reach_its_profile_keeps_its_files(desk: Desk, tmp_path: Path) -> None:
    root = tmp_path / "node"
    desk.cli.ok(desk.admin, "node", "apply", *node_args(desk, root, "--node-name", "n-1"))
    before = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    gone = desk.cli.run(
        desk.admin,
        *("node", "apply", "--server", "http://127.0.0.1:9", "--token-file", str(desk.token_file)),
        *("--cluster", "prod", "--node-name", "n-1", "--root", str(root)),
    )
    assert "cannot connect" in assert_one_line_error(gone)
    assert sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()) == before
    wrong = tmp_path / "wrong-token"
    wrong.write_text("pk_not-a-token\n")
    refused = desk.cli.run(
        desk.admin,
        *("node", "apply", "--server", desk.server.url, "--token-file", str(wrong)),
        *("--cluster", "prod", "--node-name", "n-1", "--root", str(root)),
    )
    assert "token" in assert_one_line_error(refused)
    both = desk.cli.run(
        desk.admin,
        "node",
        "apply",
        "--profile",
        str(wrong),
        *node_args(desk, root, "--node-name", "n"),
    )
    assert "--profile FILE, or --server" in assert_one_line_error(both)


class Agent:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [PULLKEEPER, "node", "agent", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def test_the_agent_keeps_the_node_as_its_profile_says(
    desk: Desk, tmp_path: Path, real_kube: RealCluster
) -> None:
    cli, admin = desk.cli, desk.admin
    base = profile_file(tmp_path / "edge.yaml", [{"host": "edge.corp.example", "insecure": "http"}])
    cli.ok(
        admin,
        *("node", "profile", "create", "edge", "--cluster", "prod", "--selector", "tier=edge"),
        *("--file", str(base), "--credential", "quay"),
    )
    # The node's labels come from its Node on the API server.
    real_kube.create("nodes", {"metadata": {"name": "edge-1", "labels": {"tier": "edge"}}})
    kubeconfig = real_kube.kubeconfig(tmp_path / "kubeconfig")
    root = tmp_path / "node"
    agent = Agent(
        [
            *node_args(desk, root, "--node-name", "edge-1"),
            *("--kubeconfig", str(kubeconfig), "--interval", "1"),
        ],
        admin.env,
        tmp_path / "agent.log",
    )
    try:
        hosts = root / HOSTS / "edge.corp.example/hosts.toml"
        eventually(hosts.is_file, "the agent writes the edge profile's hosts.toml")
        assert login_of(root, "quay.io/x/y") == ("prod+bot", QUAY_PASSWORD)
        eventually(lambda: states(desk).get("edge-1", {}).get("state") == "applied", "applied")
        assert states(desk)["edge-1"]["profile"] == "edge"

        # A change on the server reaches the node at the next pass.
        more = [{"host": "edge.corp.example", "insecure": "http"}, {"host": "new.corp.example"}]
        cli.ok(
            admin,
            *("node", "profile", "update", "edge", "--cluster", "prod"),
            *("--file", str(profile_file(tmp_path / "more.yaml", more))),
        )
        added = root / HOSTS / "new.corp.example/hosts.toml"
        eventually(added.is_file, "the new registry's hosts.toml")

        # A label change moves the node to another profile: the edge files go.
        real_kube.replace("nodes", {"metadata": {"name": "edge-1", "labels": {"tier": "core"}}})
        eventually(lambda: not added.exists() and not hosts.exists(), "the edge files removed")
        eventually(
            lambda: not (root / "var/lib/kubelet/config.json").exists(), "the logins removed"
        )
        real_kube.replace("nodes", {"metadata": {"name": "edge-1", "labels": {"tier": "edge"}}})
        eventually(added.is_file, "the edge files back")

        # Someone else changes a file the agent wrote: it is left alone, and said.
        added.write_text("# changed by hand\n")
        eventually(lambda: states(desk)["edge-1"]["state"] == "drifted", "the drift reported", 20)
        assert str(added.relative_to(root)) in states(desk)["edge-1"]["detail"]
        assert added.read_text() == "# changed by hand\n"
    finally:
        status = agent.stop()
    said = agent.log.read_text()
    assert status == 0, said
    assert said.rstrip().endswith("node agent stopped"), said
    assert QUAY_PASSWORD not in said and "Traceback" not in said
    assert f"created /{HOSTS}/new.corp.example/hosts.toml" in said
