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
    assert "(1 more not tried: the kubelet stops at the first that works)" in lines[4]
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


def test_server_mode_refusals(setup: Setup) -> None:
    image = setup.registry.image("team-a/app:v1").reference
    no_cluster = setup.pk("check", image, "-n", "shop")
    assert no_cluster.returncode == 2 and "--namespace needs --cluster" in no_cluster.stderr
    both = setup.pk("check", image, "-n", "shop", "--cluster", "c1", "--config", "x.json")
    assert both.returncode == 2 and "exclude each other" in both.stderr
    unknown = setup.pk("check", image, "-n", "nowhere", "--cluster", "c1")
    assert unknown.returncode == 2 and "no namespace 'nowhere'" in unknown.stderr
