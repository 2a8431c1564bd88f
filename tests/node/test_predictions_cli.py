"""`pullkeeper creds resolve IMAGE --node-profile FILE` as a user runs it: the profile's logins
as the node's config.json (after the pod's Secrets), the mirrors the runtime asks first, and
bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Result, assert_one_line_error, b64, isolated_env, pk

SECRETS = ("pw-hub-1", "pw-robot-1", "pw-pod-1", "pw-node-1")

PROFILE = {
    "registries": [
        {
            "host": "docker.io",
            "mirrors": [
                "https://mirror.corp.example:5000",
                {"url": "https://art.corp.example/v2/hub", "override_path": True},
            ],
        },
        {"host": "mirror.corp.example:5000", "insecure": "skip_verify"},
        {"host": "registry.corp.example:5000"},
    ],
    "logins": {
        "https://index.docker.io/v1/": {"username": "hub", "password": "pw-hub-1"},
        "registry.corp.example:5000": {"username": "robot", "password": "pw-robot-1"},
    },
}


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump({"registries": PROFILE["registries"]}))
    (tmp_path / "pod.json").write_text(
        json.dumps({"auths": {"registry.corp.example:5000": {"auth": b64("pod:pw-pod-1")}}})
    )
    (tmp_path / "node.json").write_text(
        json.dumps({"auths": {"registry.corp.example:5000": {"auth": b64("node:pw-node-1")}}})
    )
    return tmp_path


def resolve(desk: Path, *args: str) -> Result:
    result = pk("creds", "resolve", *args, env=isolated_env(desk / "home"), cwd=desk)
    assert "Traceback" not in result.stderr, result.describe()
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, result.describe()
    return result


def answer(desk: Path, *args: str) -> dict[str, Any]:
    result = resolve(desk, *args, "-o", "json")
    assert result.returncode == 0, result.describe()
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_a_docker_hub_image_with_the_profile_alone(desk: Path) -> None:
    found = answer(desk, "nginx", "--node-profile", "profile.yaml")
    assert found["repository"] == "docker.io/library/nginx"
    assert [(m["username"], m["source"], m["from_node_config"]) for m in found["matches"]] == [
        ("hub", "node config.json (profile.yaml)", True)
    ]
    node = found["node_profile"]
    assert (node["profile"], node["registry"], node["hosts_dir"]) == (
        "profile.yaml",
        "docker.io",
        "docker.io",
    )
    assert [(m["url"], m["repository_url"], m["skip_verify"]) for m in node["mirrors"]] == [
        (
            "https://mirror.corp.example:5000",
            "https://mirror.corp.example:5000/v2/library/nginx",
            True,
        ),
        ("https://art.corp.example/v2/hub", "https://art.corp.example/v2/hub/library/nginx", False),
    ]
    assert node["server"]["repository_url"] == "https://registry-1.docker.io/v2/library/nginx"
    assert node["relies_on_node"] is True
    assert node["credentials_to_mirrors"] is True


def test_the_pods_secrets_first_then_the_nodes(desk: Path) -> None:
    image = "registry.corp.example:5000/team/app:v1"
    found = answer(desk, image, "--config", "pod.json", "--node-profile", "profile.yaml")
    assert [(m["username"], m["from_node_config"]) for m in found["matches"]] == [
        ("pod", False),
        ("robot", True),
    ]
    node = found["node_profile"]
    assert node["relies_on_node"] is False
    assert node["mirrors"] == []
    assert node["server"]["repository_url"] == "https://registry.corp.example:5000/v2/team/app"


def test_the_profiles_config_json_is_the_one_the_kubelet_reads(desk: Path) -> None:
    """The kubelet reads one config.json, the first it finds; node apply writes the profile's
    where it looks first. A profile without logins writes none, so the node's other one
    stays in use."""
    image = "registry.corp.example:5000/team/app"
    result = resolve(
        desk,
        image,
        "--node-config",
        "node.json",
        "--node-profile",
        "profile.yaml",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.describe()
    assert "node.json: not read" in result.stderr, result.describe()
    matches = json.loads(result.stdout)["matches"]
    assert [m["username"] for m in matches] == ["robot"]
    bare = answer(desk, image, "--node-config", "node.json", "--node-profile", "bare.yaml")
    assert [(m["username"], m["from_node_config"]) for m in bare["matches"]] == [("node", True)]


def test_text_names_the_nodes_config_json_and_the_mirrors(desk: Path) -> None:
    result = resolve(desk, "nginx:1.27", "--node-profile", "profile.yaml")
    assert result.returncode == 0, result.describe()
    out = result.stdout
    assert "node config.json (profile.yaml)" in out
    assert "relies on the node's config.json" in out
    assert (
        "through mirror https://art.corp.example/v2/hub, override_path: asks "
        "https://art.corp.example/v2/hub/library/nginx" in out
    ), out
    assert "then docker.io: asks https://registry-1.docker.io/v2/library/nginx" in out, out
    assert "goes to the mirrors too" in out, out
    # A registry the profile says nothing of: the runtime's own way, nothing of mirrors.
    other = resolve(desk, "ghcr.io/org/tool", "--node-profile", "profile.yaml")
    assert other.returncode == 0, other.describe()
    assert "profile.yaml says nothing of ghcr.io" in other.stdout
    assert "No credential matches" in other.stdout
    assert "mirror" not in other.stdout


def test_show_secrets_shows_the_nodes_password(desk: Path) -> None:
    result = pk(
        "creds",
        "resolve",
        "nginx",
        "--node-profile",
        "profile.yaml",
        "--show-secrets",
        "-o",
        "json",
        env=isolated_env(desk / "home"),
        cwd=desk,
    )
    assert result.returncode == 0, result.describe()
    assert json.loads(result.stdout)["matches"][0]["password"] == "pw-hub-1"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nginx",), "give --config FILE"),
        (("nginx", "--node-profile", "missing.yaml"), "missing.yaml: cannot be read"),
        (("nginx", "--node-profile", "broken.yaml"), "broken.yaml: registries[0].host"),
        (("Nginx", "--node-profile", "profile.yaml"), "not a valid image reference"),
    ],
)
def test_bad_input_is_one_line_exit_2(desk: Path, args: tuple[str, ...], words: str) -> None:
    (desk / "broken.yaml").write_text(yaml.safe_dump({"registries": [{"host": "https://x"}]}))
    line = assert_one_line_error(resolve(desk, *args))
    assert words in line, line
