"""The files `node apply` writes for Docker and RKE2/k3s, checked against what Docker's and
RKE2's documentation and sources say of them: JSON Schemas in tests/node/schemas/ (each rule
with its source in a `$comment`), read with jsonschema, and the rules a schema cannot say
(which file a path names, which host a config is for, where each endpoint's requests go)
checked apart here. Broken documents show that the schemas can refuse."""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator

from pullkeeper.core.nodeconfig.profile import DOCKER_HUB, NodeProfile, parse
from pullkeeper.services import node_files
from pullkeeper.services.node_files import Layout
from tests.registry import pki

SCHEMAS = Path(__file__).parent / "schemas"
DOCKER, RKE2 = "docker-daemon", "rke2-registries"

# The machine's own daemon.json: its settings stay as they are.
THEIRS = {
    "log-driver": "journald",
    "log-opts": {"tag": "{{.Name}}"},
    "features": {"buildkit": True},
    "insecure-registries": ["10.20.0.0/16", "old.lab.example:5000"],
    "registry-mirrors": ["https://theirs.mirror.example"],
}


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator(name).iter_errors(doc)
    ]


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    issued = pki.certificate_authority(tmp_path_factory.mktemp("ca") / "ca", "Schema CA")
    return Path(issued.cert_file).read_text()


def rich(ca_pem: str) -> NodeProfile:
    """CAs, both kinds of insecure, mirrors at a URL's root, below a path and standing for
    /v2, a plain-HTTP mirror, an IPv6 registry, and logins."""
    return parse(
        {
            "registries": [
                {
                    "host": "docker.io",
                    "mirrors": [
                        "https://mirror.corp.example:5000",
                        {"url": "https://art.corp.example/v2/hub", "override_path": True},
                        "https://nexus.corp.example/repository/docker-proxy",
                        "http://cache.lab.example:5000",
                    ],
                },
                {"host": "mirror.corp.example:5000", "ca": ca_pem},
                {
                    "host": "registry.corp.example",
                    "ca": ca_pem,
                    "mirrors": ["https://nexus.corp.example/repository/corp"],
                },
                {"host": "lab.corp.example:5000", "insecure": "http"},
                {"host": "dev.corp.example", "insecure": "skip_verify"},
                {"host": "[fd00::5]:5000", "insecure": "http"},
            ],
            "logins": {
                "registry.corp.example": {"username": "robot", "password": "pw-schema-1"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "pw-schema-2"},
                "mirror.corp.example:5000": {"username": "mirror", "password": "pw-schema-3"},
            },
        }
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, ca_pem: str) -> Path:
    """A node root with the machine's own daemon.json, after `node apply` of the rich
    profile for containerd, Docker and RKE2."""
    root = tmp_path_factory.mktemp("node")
    daemon_json = root / "etc/docker/daemon.json"
    daemon_json.parent.mkdir(parents=True)
    daemon_json.write_text(json.dumps(THEIRS, indent=4))
    node_files.apply(rich(ca_pem), ["containerd", "docker", "rke2"], Layout(), root)
    return root


def read(root: Path, path: str) -> str:
    return (root / path.lstrip("/")).read_text()


def test_the_schemas_follow_json_schema_2020_12() -> None:
    for name in (DOCKER, RKE2):
        assert validator(name).schema["$schema"].endswith("/2020-12/schema")


def test_daemon_json_keeps_the_machines_settings_and_is_as_docker_reads_it(
    node: Path, ca_pem: str
) -> None:
    doc = json.loads(read(node, "/etc/docker/daemon.json"))
    assert problems(DOCKER, doc) == []
    for key in ("log-driver", "log-opts", "features"):
        assert doc[key] == THEIRS[key]
    profile = rich(ca_pem)
    assert doc["insecure-registries"] == [
        *THEIRS["insecure-registries"],
        *(r.host for r in profile.registries if r.insecure),
    ]
    # Docker mirrors Docker Hub only: what is written besides the machine's own is the
    # profile's docker.io mirrors that Docker can take, and the rest is said to be left out.
    hub = profile.registry(DOCKER_HUB)
    assert hub is not None
    ours = doc["registry-mirrors"][len(THEIRS["registry-mirrors"]) :]
    assert ours == ["https://mirror.corp.example:5000", "http://cache.lab.example:5000"]
    assert set(ours) <= {m.url for m in hub.mirrors}
    notes = node_files.left_out(profile, ["docker"])
    for gone in {m.url for m in hub.mirrors} - set(ours):
        assert any(gone in line for line in notes), (gone, notes)
    assert any("registry.corp.example" in line for line in notes)  # not Docker Hub's


def test_dockers_mirrors_get_the_requests_containerds_do(node: Path) -> None:
    """Docker puts /v2 after a mirror's URL; containerd after a host's, unless override_path:
    a mirror written for both is asked the same."""
    doc = json.loads(read(node, "/etc/docker/daemon.json"))
    hosts = tomllib.loads(read(node, "/etc/containerd/certs.d/docker.io/hosts.toml"))["host"]
    containerd = {containerd_base(url, entry) for url, entry in hosts.items()}
    for mirror in doc["registry-mirrors"][len(THEIRS["registry-mirrors"]) :]:
        assert mirror.rstrip("/") + "/v2" in containerd, mirror


def containerd_base(url: str, entry: dict[str, Any]) -> str:
    """Where containerd sends a host's registry API requests (containerd's hosts.md)."""
    return url if entry.get("override_path") else url.rstrip("/") + "/v2"


def k3s_base(endpoint: str) -> str:
    """Where k3s has containerd send an endpoint's requests: k3s's normalizeEndpointAddress
    (pkg/agent/containerd/config.go) takes a path of "", "/" or "/v2" as /v2, and any other
    as override_path."""
    parts = urlsplit(endpoint)
    path = "/v2" if parts.path in ("", "/", "/v2") else parts.path
    return f"{parts.scheme}://{parts.netloc}{path}"


def test_registries_yaml_is_as_rke2_and_k3s_read_it(node: Path, ca_pem: str) -> None:
    written = read(node, "/etc/rancher/rke2/registries.yaml")
    doc = yaml.safe_load(written)
    assert problems(RKE2, doc) == []
    profile = rich(ca_pem)
    for r in profile.registries:
        config = doc["configs"].get(r.host) or {}
        if r.insecure == "skip_verify":
            assert config["tls"] == {"insecure_skip_verify": True}
        elif r.ca_pem:
            # A CA file's path names the file written beside it, holding the CA.
            assert read(node, config["tls"]["ca_file"]) == ca_pem
        else:
            assert "tls" not in config
        if r.insecure == "http":
            assert f"http://{r.host}" in doc["mirrors"][r.host]["endpoint"]
    # Configs are looked up by an endpoint's host: a mirror's CA and login are under it.
    assert doc["configs"]["mirror.corp.example:5000"]["auth"]["username"] == "mirror"
    assert doc["configs"][DOCKER_HUB]["auth"]["username"] == "hub"


def test_each_endpoint_gets_the_requests_containerds_host_does(node: Path, ca_pem: str) -> None:
    doc = yaml.safe_load(read(node, "/etc/rancher/rke2/registries.yaml"))
    for r in rich(ca_pem).registries:
        if not r.mirrors:
            continue
        toml = tomllib.loads(read(node, f"/etc/containerd/certs.d/{r.host}/hosts.toml"))
        wanted = [containerd_base(url, entry) for url, entry in toml["host"].items()]
        endpoints = doc["mirrors"][r.host]["endpoint"][: len(wanted)]
        assert [k3s_base(e) for e in endpoints] == wanted, r.host


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"registry-mirrors": "https://m.example"}, "registry-mirrors"),
        ({"registry-mirrors": ["https://art.corp.example/v2/hub"]}, "registry-mirrors/0"),
        ({"registry-mirrors": ["mirror.example:5000"]}, "registry-mirrors/0"),
        ({"registry-mirrors": ["https://m.example/?ns=docker.io"]}, "registry-mirrors/0"),
        ({"registry-mirrors": ["https://user:pw@m.example"]}, "registry-mirrors/0"),
        ({"insecure-registries": ["ftp://lab.example"]}, "insecure-registries/0"),
        ({"insecure-registries": ["-lab.example:5000"]}, "insecure-registries/0"),
        ({"insecure-registries": [5000]}, "insecure-registries/0"),
        ([], "(top)"),
    ],
)
def test_a_daemon_json_docker_would_refuse_is_refused(doc: Any, where: str) -> None:
    found = problems(DOCKER, doc)
    assert found and all(p.startswith(f"{where}: ") for p in found), found


GOOD_RKE2 = {
    "mirrors": {"docker.io": {"endpoint": ["https://m.example:5000"]}},
    "configs": {"m.example:5000": {"tls": {"ca_file": "/etc/ca.crt"}}},
}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"mirror": {}}, "(top)"),
        ({"auths": {}}, "(top)"),
        ({"mirrors": {"docker.io": {"endpoints": ["https://m.example"]}}}, "mirrors/docker.io"),
        ({"mirrors": {"docker.io": {"endpoint": []}}}, "mirrors/docker.io/endpoint"),
        (
            {"mirrors": {"docker.io": {"endpoint": "https://m.example"}}},
            "mirrors/docker.io/endpoint",
        ),
        (
            {"mirrors": {"docker.io": {"endpoint": ["m.example:5000"]}}},
            "mirrors/docker.io/endpoint/0",
        ),
        (
            {"mirrors": {"docker.io": {"endpoint": ["ftp://m.example"]}}},
            "mirrors/docker.io/endpoint/0",
        ),
        ({"mirrors": {"https://docker.io": {"endpoint": ["https://m.example"]}}}, "mirrors"),
        ({"configs": {"m.example": {"tls": {"ca": "/etc/ca.crt"}}}}, "configs/m.example/tls"),
        (
            {"configs": {"m.example": {"tls": {"ca_file": "ca.crt"}}}},
            "configs/m.example/tls/ca_file",
        ),
        (
            {"configs": {"m.example": {"tls": {"insecure_skip_verify": "true"}}}},
            "configs/m.example/tls/insecure_skip_verify",
        ),
        ({"configs": {"m.example": {"tls": {"cert_file": "/c.crt"}}}}, "configs/m.example/tls"),
        ({"configs": {"m.example": {"auth": {"username": "u"}}}}, "configs/m.example/auth"),
        ({"configs": {"m.example": {"auth": {"token": "t"}}}}, "configs/m.example/auth"),
        ({"configs": {"m.example": {"login": {}}}}, "configs/m.example"),
    ],
)
def test_a_registries_yaml_rke2_would_misread_is_refused(
    change: dict[str, Any], where: str
) -> None:
    assert problems(RKE2, GOOD_RKE2) == []
    found = problems(RKE2, {**GOOD_RKE2, **change})
    assert found and all(p.startswith(f"{where}: ") for p in found), found
