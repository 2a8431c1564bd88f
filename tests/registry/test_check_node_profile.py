"""`pullkeeper check IMAGE --node-profile FILE` from here, against a real basic-auth registry:
the node's config.json (the profile's logins) tried after the pod's credentials, and the
mirrors the node would ask first named in the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Result, assert_one_line_error, b64, isolated_env, pk
from tests.registry.servers import APP, BasicRegistry, PlainRegistry

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-real-password-47"  # a throwaway test value


class Desk:
    def __init__(self, base: Path, registry: BasicRegistry) -> None:
        assert registry.ca_file is not None and registry.credentials is not None
        self.base, self.registry = base, registry
        self.right = registry.credentials
        self.env = isolated_env(base / "home")  # no docker login, no server session
        (base / "ca.crt").write_bytes(registry.ca_file.read_bytes())
        self.ca_pem = registry.ca_file.read_text()
        self.config("wrong.json", self.right.username, WRONG_PASSWORD)

    def config(self, name: str, username: str, password: str) -> None:
        auth = b64(f"{username}:{password}")
        (self.base / name).write_text(json.dumps({"auths": {self.registry.host: {"auth": auth}}}))

    def profile(self, name: str, password: str, mirrors: list[str] | None = None) -> str:
        registry: dict[str, Any] = {"host": self.registry.host, "ca": self.ca_pem}
        if mirrors:
            registry["mirrors"] = mirrors
        login = {"username": self.right.username, "password": password}
        doc = {"registries": [registry], "logins": {self.registry.host: login}}
        (self.base / name).write_text(yaml.safe_dump(doc))
        return name

    def check(self, *args: str) -> Result:
        image = f"{self.registry.host}/{APP}"
        result = pk("check", image, "--ca-file", "ca.crt", *args, env=self.env, cwd=self.base)
        assert "Traceback" not in result.stderr, result.describe()
        for secret in (self.right.password, WRONG_PASSWORD):
            assert secret not in result.stdout + result.stderr, result.describe()
        return result


@pytest.fixture
def desk(tmp_path: Path, basic_registry: BasicRegistry) -> Desk:
    return Desk(tmp_path, basic_registry)


def test_the_profiles_login_is_the_only_right_one(desk: Desk) -> None:
    profile = desk.profile("node.yaml", desk.right.password)
    result = desk.check("--config", "wrong.json", "--node-profile", profile, "-o", "json")
    assert result.returncode == 0, result.describe()
    report = json.loads(result.stdout)
    assert [(a["source"], a["ok"], a["cause"]) for a in report["attempts"]] == [
        ("wrong.json", False, "unauthorized"),
        ("node config.json (node.yaml)", True, None),
    ]
    node = report["node_profile"]
    assert (node["pod_credentials"], node["node_credentials"], node["relies_on_node"]) == (
        1,
        1,
        False,
    )
    assert node["server"]["ca"] is True and node["mirrors"] == []


def test_with_no_credential_of_the_pods_it_relies_on_the_node(desk: Desk) -> None:
    profile = desk.profile("node.yaml", desk.right.password)
    result = desk.check("--node-profile", profile)
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert (
        f"  1. node config.json (node.yaml) ({desk.right.username}@{desk.registry.host}): works"
        in (lines)
    ), result.stdout
    assert (
        "node:        relies on the node's config.json: no credential of the pod's is for this"
        " image" in lines
    ), result.stdout
    assert lines[-1] == "result:      can pull"
    # Without the profile nothing matches: anonymous, refused.
    anonymous = desk.check()
    assert anonymous.returncode == 1, anonymous.describe()
    assert "pulls it anonymously" in anonymous.stdout


def test_a_wrong_login_in_the_profile_cannot_pull(desk: Desk) -> None:
    profile = desk.profile("wrong.yaml", WRONG_PASSWORD)
    result = desk.check("--node-profile", profile, "-o", "json")
    assert result.returncode == 1, result.describe()
    report = json.loads(result.stdout)
    assert [(a["source"], a["cause"]) for a in report["attempts"]] == [
        ("node config.json (wrong.yaml)", "unauthorized")
    ]
    assert report["node_profile"]["relies_on_node"] is True


def test_the_mirrors_the_node_asks_first_are_named(
    desk: Desk, plain_registry: PlainRegistry
) -> None:
    profile = desk.profile("mirrored.yaml", desk.right.password, mirrors=[plain_registry.url])
    result = desk.check("--node-profile", profile)
    assert result.returncode == 0, result.describe()
    host = desk.registry.host
    assert (
        f"  through mirror {plain_registry.url}: asks {plain_registry.url}/v2/team-a/app"
        " (plain HTTP)" in result.stdout.splitlines()
    ), result.stdout
    assert (
        f"  then {host}: asks https://{host}/v2/team-a/app (TLS checked with the profile's CA)"
        in result.stdout.splitlines()
    ), result.stdout
    assert "each credential the kubelet tries goes to the mirrors too" in result.stdout
    assert f"(this check asks {host} itself, not the mirrors)" in result.stdout


def test_not_with_a_namespace(desk: Desk) -> None:
    profile = desk.profile("node.yaml", desk.right.password)
    line = assert_one_line_error(desk.check("--node-profile", profile, "-n", "team-a"))
    assert "--node-profile" in line and "--namespace" in line, line
