"""`pullkeeper check --namespace` and `credential verify` against a real `pullkeeper serve`.

The server holds the credentials and talks to a real token registry; the CLI only
shows what the server found, and no password ever reaches the command's output.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Result, isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, Server, start_server
from tests.registry.servers import TokenRegistry

WRONG_PASSWORD = "not-alices-password-77"  # a throwaway test value


@dataclass(frozen=True)
class Setup:
    server: Server
    env: dict[str, str]
    registry: TokenRegistry
    secrets: tuple[str, ...]

    def pk(self, *args: str) -> Result:
        result = pk(*args, env=self.env)
        for secret in self.secrets:
            assert secret not in result.stdout + result.stderr, result.describe()
        return result


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, token_registry: TokenRegistry
) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("check-server")
    assert token_registry.ca_file is not None
    certs = base / "data" / "certs.d" / token_registry.host
    certs.mkdir(parents=True)
    shutil.copyfile(token_registry.ca_file, certs / "ca.crt")
    server = start_server(base)
    try:
        alice, bob = token_registry.credentials, token_registry.bob
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as api:

            def ok(method: str, path: str, body: dict[str, object]) -> dict[str, str]:
                response = api.request(method, path, json=body)
                assert response.status_code < 300, response.text
                result: dict[str, str] = response.json()
                return result

            ok("POST", "/clusters", {"name": "c1"})
            web = ok("POST", "/projects", {"name": "web", "cluster": "c1"})
            ok("PUT", "/clusters/c1/namespaces/shop", {"project": web["id"]})
            common = {"cluster": "c1", "provider": "custom", "server": token_registry.host}
            for name, scope, user, password in (
                (
                    "wrong",
                    {"scope": "namespace", "namespace": "shop"},
                    alice.username,
                    WRONG_PASSWORD,
                ),
                (
                    "alice",
                    {"scope": "project", "project": web["id"]},
                    alice.username,
                    alice.password,
                ),
                ("bob", {"scope": "cluster"}, bob.username, bob.password),
            ):
                body = {"name": name, "username": user, "password": password, **common, **scope}
                ok("POST", "/credentials", body)
        env = isolated_env(Path(base / "cli-home"))
        env.update(PULLKEEPER_SERVER=server.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)
        yield Setup(server, env, token_registry, (alice.password, bob.password, WRONG_PASSWORD))
    finally:
        server.stop()


def test_check_on_the_server_names_the_working_credential(setup: Setup) -> None:
    image = setup.registry.image("team-a/app:v1")
    result = setup.pk("check", image.reference, "-n", "shop", "--cluster", "c1")
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[0] == f"image:       {image.reference}"
    assert lines[2].startswith("  1. wrong (alice@") and "wrong user name or password" in lines[2]
    assert lines[3].startswith("  2. alice (alice@") and lines[3].endswith(": works")
    assert lines[4] == "  (1 more not tried: bob; the kubelet stops at the first that works)"
    assert f"digest:      {image.digest}" in lines
    assert lines[-1] == "result:      can pull"

    every = setup.pk(
        "check", image.reference, "-n", "shop", "--cluster", "c1", "--all", "-o", "json"
    )
    assert every.returncode == 0, every.describe()
    report = every.json()
    assert [(a["source"], a["cause"]) for a in report["attempts"]] == [
        ("wrong", "unauthorized"),
        ("alice", None),
        ("bob", "denied"),
    ]


def test_check_on_the_server_that_cannot_pull_exits_1(setup: Setup) -> None:
    missing = setup.registry.image("team-a/app:v1").reference.replace(":v1", ":gone")
    result = setup.pk("check", missing, "-n", "shop", "--cluster", "c1")
    assert result.returncode == 1, result.describe()
    assert "does not exist" in result.stdout.splitlines()[-1]


def test_credential_verify(setup: Setup) -> None:
    ok = setup.pk("credential", "verify", "alice")
    assert ok.returncode == 0, ok.describe()
    assert ok.stdout.startswith(f"credential alice ({setup.registry.host}): ok, ")
    refused = setup.pk("credential", "verify", "wrong")
    assert refused.returncode == 1, refused.describe()
    assert "failing (unauthorized)" in refused.stdout
    shown = setup.pk("credential", "show", "wrong")
    assert "last check" in shown.stdout and "failing (unauthorized)" in shown.stdout
    history = setup.pk("credential", "checks", "wrong").stdout.splitlines()
    assert history[0].split() == ["TIME", "CHECK", "BY", "RESULT"]
    newest = history[1].split(None, 3)
    assert newest[1:3] == ["login", "admin"]
    assert newest[3].startswith("failing (unauthorized): ")


def test_server_mode_refusals(setup: Setup) -> None:
    image = setup.registry.image("team-a/app:v1").reference
    no_cluster = setup.pk("check", image, "-n", "shop")
    assert no_cluster.returncode == 2 and "--namespace needs --cluster" in no_cluster.stderr
    both = setup.pk("check", image, "-n", "shop", "--cluster", "c1", "--config", "x.json")
    assert both.returncode == 2 and "exclude each other" in both.stderr
    unknown = setup.pk("check", image, "-n", "nowhere", "--cluster", "c1")
    assert unknown.returncode == 2 and "no namespace 'nowhere'" in unknown.stderr


# --------------------------------------------------------------------------- logged in, no --config


def _ca_args(setup: Setup) -> list[str]:
    return ["--ca-file", str(setup.registry.ca_file)]


def test_logged_in_commands_use_the_servers_credentials(setup: Setup) -> None:
    multi = setup.registry.image("team-a/multi:v1")
    shown = setup.pk("manifest", "inspect", multi.reference, *_ca_args(setup), "-o", "json")
    assert shown.returncode == 0, shown.describe()
    assert shown.json()["digest"] == multi.digest

    image = setup.registry.image("team-a/app:v1")
    checked = setup.pk("check", image.reference, *_ca_args(setup), "--all", "-o", "json")
    assert checked.returncode == 0, checked.describe()
    verdicts = {a["source"]: a["cause"] for a in checked.json()["attempts"]}
    assert verdicts == {
        "server:wrong": "unauthorized",
        "server:alice": None,
        "server:bob": "denied",
    }

    # Every secret the command read is in the audit trail, with who read it.
    audit = setup.pk("audit", "--action", "credential.read_secret", "-o", "json")
    assert audit.returncode == 0, audit.describe()
    read = {r["object_id"] for r in audit.json()["items"] if r["actor"] == "admin"}
    listed = setup.pk("credential", "list", "-o", "json").json()["items"]
    ids = {c["id"] for c in listed if c["name"] in ("wrong", "alice", "bob")}
    assert len(ids) == 3 and ids <= read, (ids, read)


def test_a_member_cannot_use_the_servers_secrets(setup: Setup, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=setup.server.url + "/api/v1", headers=headers) as api:
        password = "member-pass-1234"  # a throwaway test value
        made = api.post("/users", json={"username": "mia", "password": password})
        assert made.status_code == 201, made.text
        bound = api.put("/projects/web/members/mia", json={"role": "member"})
        assert bound.status_code == 200, bound.text
        token = api.post("/login", json={"username": "mia", "password": password}).json()["token"]
    env = isolated_env(tmp_path / "mia")
    env.update(PULLKEEPER_SERVER=setup.server.url, PULLKEEPER_TOKEN=token)
    image = setup.registry.image("team-a/app:v1")
    result = pk("check", image.reference, *_ca_args(setup), "-o", "json", env=env)
    assert result.returncode == 1, result.describe()
    assert "you may not read the secret of" in result.stderr
    assert all(name in result.stderr for name in ("wrong", "alice", "bob"))
    # Without a readable credential it falls back to ~/.docker/config.json: here none, so anonymous.
    assert [a["source"] for a in result.json()["attempts"]] == ["anonymous"]
    assert result.json()["error"]["cause"] == "no_credentials"


def test_check_on_the_server_with_the_nodes_profile(setup: Setup) -> None:
    """A node profile naming alice's cluster-wide twin: kube-system's pods (no Secrets)
    pull with the node's config.json, and the check says so."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    alice = setup.registry.credentials
    with httpx.Client(base_url=setup.server.url + "/api/v1", headers=headers) as api:
        body = {
            "name": "alice-nodes",
            "cluster": "c1",
            "scope": "cluster",
            "provider": "custom",
            "server": setup.registry.host,
            "username": alice.username,
            "password": alice.password,
        }
        made = api.post("/credentials", json=body)
        assert made.status_code == 201, made.text
        profile = {"name": "gpu", "node_selector": {"pool": "gpu"}, "credentials": ["alice-nodes"]}
        assert api.post("/clusters/c1/node-profiles", json=profile).status_code == 201
        assert api.put("/clusters/c1/namespaces/kube-system", json={}).status_code == 200
    image = setup.registry.image("team-a/app:v1").reference
    args = ("check", image, "-n", "kube-system", "--cluster", "c1")
    # A node no selector picks has no profile: nothing to pull with.
    assert setup.pk(*args).returncode == 1
    result = setup.pk(*args, "--node-labels", "pool=gpu")
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[2].startswith("  1. node config.json (profile gpu): alice-nodes (alice@")
    assert lines[2].endswith(": works")
    assert any(
        line.startswith("node:") and "relies on the node's config.json" in line for line in lines
    )
    bad = setup.pk(*args, "--node-labels", "pool")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr, bad.describe()
    # What the module's other tests count on is as it was.
    with httpx.Client(base_url=setup.server.url + "/api/v1", headers=headers) as api:
        assert api.delete("/clusters/c1/node-profiles/gpu").status_code == 204
        assert api.delete(f"/credentials/{made.json()['id']}").status_code == 204
