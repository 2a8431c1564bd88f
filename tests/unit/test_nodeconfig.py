"""Node profiles and the files each runtime reads them from (core/nodeconfig): every
rendering is parsed back with the format's own reader and checked field by field."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.registry import pki

from pullkeeper.core.dockerconfig import parse_config_json
from pullkeeper.core.keyring import Keyring
from pullkeeper.core.nodeconfig import containerd, containers, docker, kubelet, rke2
from pullkeeper.core.nodeconfig.profile import Mirror, NodeProfile, ProfileError, parse


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    issued = pki.certificate_authority(tmp_path_factory.mktemp("ca") / "ca", "Test CA")
    return Path(issued.cert_file).read_text()


def profile(ca_pem: str) -> NodeProfile:
    return parse(
        {
            "registries": [
                {
                    "host": "docker.io",
                    "mirrors": [
                        "https://mirror.corp.example:5000",
                        {"url": "https://art.corp.example/v2/hub", "override_path": True},
                    ],
                },
                {"host": "mirror.corp.example:5000", "ca": ca_pem},
                {"host": "registry.corp.example", "ca": ca_pem},
                {"host": "lab.corp.example:5000", "insecure": "http"},
                {"host": "dev.corp.example", "insecure": "skip_verify"},
            ],
            "logins": {
                "registry.corp.example": {"username": "robot", "password": "pw-robot-1"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "pw-hub-1"},
            },
        }
    )


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ({"registries": [{"host": "https://r.example"}]}, "registries[0].host", "without a scheme"),
        ({"registries": [{"host": "r.example/path"}]}, "registries[0].host", "without a scheme"),
        ({"registries": [{"host": "R.example"}]}, "registries[0].host", "lower case"),
        ({"registries": [{"host": "r.example", "ca": "hello"}]}, "registries[0].ca", "PEM"),
        (
            {"registries": [{"host": "r.example", "insecure": "yes"}]},
            "registries[0].insecure",
            "http, skip_verify",
        ),
        ({"registries": [{"host": "r.example", "tls": {}}]}, "registries[0].tls", "not a field"),
        (
            {"registries": [{"host": "r.example", "mirrors": ["ftp://m.example"]}]},
            "registries[0].mirrors[0].url",
            "http:// or https://",
        ),
        (
            {"registries": [{"host": "r.example", "mirrors": ["https://r.example"]}]},
            "registries[0].mirrors[0]",
            "cannot mirror itself",
        ),
        (
            {
                "registries": [
                    {"host": "a.example", "mirrors": ["https://b.example"]},
                    {"host": "b.example", "mirrors": ["https://c.example"]},
                    {"host": "c.example", "mirrors": ["https://a.example"]},
                ]
            },
            "registries[0].mirrors",
            "a.example -> b.example -> c.example -> a.example",
        ),
        (
            {"registries": [{"host": "a.example"}, {"host": "a.example"}]},
            "registries[1].host",
            "registries[0]",
        ),
        (
            {
                "registries": [
                    {
                        "host": "r.example",
                        "mirrors": [{"url": "https://m.example", "override_path": True}],
                    }
                ]
            },
            "registries[0].mirrors[0].override_path",
            "needs a path",
        ),
        ({"logins": {"r.example": {"username": "u"}}}, "logins.r.example", "password"),
        (
            {"logins": {"r.example": {"username": "a:b", "password": "p"}}},
            "logins.r.example.username",
            ":",
        ),
        ({"nodes": []}, "nodes", "not a field"),
    ],
)
def test_a_profile_that_cannot_be_used_names_its_field(
    doc: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ProfileError) as e:
        parse(doc)
    assert e.value.field == field and words in e.value.message, e.value


def test_a_plain_http_registry_has_no_ca(ca_pem: str) -> None:
    with pytest.raises(ProfileError) as e:
        parse({"registries": [{"host": "r.example", "insecure": "http", "ca": ca_pem}]})
    assert e.value.field == "registries[0].ca"


def _hosts(files: list[Any], host: str) -> dict[str, Any]:
    found = {f.path: f for f in files}
    loaded: dict[str, Any] = tomllib.loads(
        found[f"/etc/containerd/certs.d/{host}/hosts.toml"].content.decode()
    )
    return loaded


def test_containerd_hosts_toml_per_registry(ca_pem: str) -> None:
    files = containerd.files(profile(ca_pem))
    paths = {f.path for f in files}
    assert "/etc/containerd/certs.d/registry.corp.example/ca.crt" in paths
    assert not any(f.secret for f in files)  # no login goes to containerd's files

    hub = _hosts(files, "docker.io")
    assert hub["server"] == "https://registry-1.docker.io"
    assert hub["host"] == {
        "https://mirror.corp.example:5000": {
            "capabilities": ["pull", "resolve"],
            "ca": "/etc/containerd/certs.d/mirror.corp.example:5000/ca.crt",
        },
        "https://art.corp.example/v2/hub": {
            "capabilities": ["pull", "resolve"],
            "override_path": True,
        },
    }
    corp = _hosts(files, "registry.corp.example")
    ca = "/etc/containerd/certs.d/registry.corp.example/ca.crt"
    assert corp == {
        "server": "https://registry.corp.example",
        "ca": ca,
        "host": {"https://registry.corp.example": {"capabilities": ["pull", "resolve"], "ca": ca}},
    }
    assert _hosts(files, "lab.corp.example:5000") == {
        "server": "http://lab.corp.example:5000",
        "host": {"http://lab.corp.example:5000": {"capabilities": ["pull", "resolve"]}},
    }
    dev = _hosts(files, "dev.corp.example")
    assert dev["skip_verify"] is True and dev["host"]["https://dev.corp.example"]["skip_verify"]


CONFIG_TOML = """\
version = 2
# the machine's own settings
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"  # kept
"""


def test_config_path_is_merged_into_config_toml_keeping_the_rest() -> None:
    merged = containerd.enable_config_path(CONFIG_TOML, "/etc/containerd/certs.d")
    assert merged.startswith(CONFIG_TOML)  # nothing before it moved, comments kept
    doc = tomllib.loads(merged)
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"] == {"config_path": "/etc/containerd/certs.d"}
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert containerd.enable_config_path(merged, "/etc/containerd/certs.d") == merged
    fresh = tomllib.loads(containerd.enable_config_path("", "/c"))
    assert fresh["version"] == 2
    assert fresh["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"] == "/c"
    v3 = tomllib.loads(containerd.enable_config_path("version = 3\n", "/c"))
    assert v3["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"] == "/c"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("version = [", "is not TOML"),
        ("version = 1\n", "version 1"),
        (
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
            'endpoint = ["https://m"]\n',
            "registry.mirrors",
        ),
    ],
)
def test_a_config_toml_containerd_could_not_take_is_refused(text: str, words: str) -> None:
    with pytest.raises(ProfileError) as e:
        containerd.enable_config_path(text)
    assert e.value.field == "config.toml" and words in e.value.message


def test_containers_registries_conf_certs_and_auth(ca_pem: str) -> None:
    files = {f.path: f for f in containers.files(profile(ca_pem))}
    conf = tomllib.loads(
        files["/etc/containers/registries.conf.d/50-pullkeeper.conf"].content.decode()
    )
    by_location = {r["location"]: r for r in conf["registry"]}
    assert by_location["docker.io"] == {
        "location": "docker.io",
        "insecure": False,
        "mirror": [
            {"location": "mirror.corp.example:5000", "insecure": False},
            {"location": "art.corp.example/hub", "insecure": False},
        ],
    }
    assert by_location["lab.corp.example:5000"]["insecure"] is True
    assert by_location["dev.corp.example"]["insecure"] is True
    assert files["/etc/containers/certs.d/registry.corp.example/ca.crt"].content == ca_pem.encode()
    auth = files["/etc/containers/auth.json"]
    assert auth.secret and "pw-robot-1" not in repr(auth)
    logins = parse_config_json(auth.content).auths
    assert (logins["registry.corp.example"].username, logins["registry.corp.example"].password) == (
        "robot",
        "pw-robot-1",
    )


def test_docker_daemon_json_is_merged_and_what_a_profile_drops_goes(ca_pem: str) -> None:
    existing = json.dumps({"log-driver": "journald", "insecure-registries": ["old.example:5000"]})
    p = profile(ca_pem)
    merged = docker.merge_daemon_json(existing, p)
    doc = json.loads(merged)
    assert doc["log-driver"] == "journald"
    assert doc["insecure-registries"] == [
        "old.example:5000",
        "lab.corp.example:5000",
        "dev.corp.example",
    ]
    # The override_path mirror is not Docker's to take (test_docker_mirrors_with_a_path...).
    assert doc["registry-mirrors"] == ["https://mirror.corp.example:5000"]
    assert docker.merge_daemon_json(merged, p, docker.ours(p)) == merged  # idempotent
    emptied = json.loads(docker.merge_daemon_json(merged, NodeProfile(), docker.ours(p)))
    assert emptied == {"log-driver": "journald", "insecure-registries": ["old.example:5000"]}
    for bad in ("[1]", "{", '{"insecure-registries": "x"}'):
        with pytest.raises(ProfileError):
            docker.merge_daemon_json(bad, p)
    assert [f.path for f in docker.ca_files(p)] == [
        "/etc/docker/certs.d/mirror.corp.example:5000/ca.crt",
        "/etc/docker/certs.d/registry.corp.example/ca.crt",
    ]


def test_docker_mirrors_with_a_path_are_left_out_and_said_to_be() -> None:
    p = parse(
        {
            "registries": [
                {
                    "host": "docker.io",
                    "mirrors": [
                        "https://m.example/",
                        "https://nexus.example/repository/hub",
                        {"url": "https://art.example/v2/hub", "override_path": True},
                    ],
                },
                {"host": "quay.io", "mirrors": ["https://m.example"]},
            ]
        }
    )
    assert docker.ours(p)["registry-mirrors"] == ["https://m.example"]
    lines = docker.left_out(p)
    assert [line.split(" is left out")[0] for line in lines[:2]] == [
        "the mirror https://nexus.example/repository/hub",
        "the mirror https://art.example/v2/hub",
    ]
    assert "before 25.0" in lines[0] and "stands for /v2" in lines[1]
    assert lines[2] == "the mirrors of quay.io are left out: Docker mirrors Docker Hub only"
    assert docker.left_out(NodeProfile()) == []


def test_rke2_endpoints_say_their_v2_when_their_path_is_a_prefix() -> None:
    p = parse(
        {
            "registries": [
                {
                    "host": "docker.io",
                    "mirrors": [
                        "https://m.example",
                        "https://nexus.example/repository/hub",
                        "https://plain.example/v2",
                        {"url": "https://art.example/v2/hub", "override_path": True},
                    ],
                }
            ]
        }
    )
    doc = yaml.safe_load(rke2.registries_yaml(p, "/etc/rancher/rke2/certs.d"))
    # k3s takes any path but "", "/" and "/v2" as standing for /v2 (containerd's
    # override_path): a prefix gets its /v2 written (containerd adds it to a path that does
    # not end in /v2), an override_path URL is as given.
    assert doc["mirrors"]["docker.io"]["endpoint"] == [
        "https://m.example",
        "https://nexus.example/repository/hub/v2",
        "https://plain.example",
        "https://art.example/v2/hub",
    ]


def test_rke2_registries_yaml(ca_pem: str) -> None:
    files = {f.path: f for f in rke2.files(profile(ca_pem))}
    written = files["/etc/rancher/rke2/registries.yaml"]
    assert written.secret
    doc = yaml.safe_load(written.content)
    assert doc["mirrors"]["docker.io"] == {
        "endpoint": ["https://mirror.corp.example:5000", "https://art.corp.example/v2/hub"]
    }
    assert doc["mirrors"]["lab.corp.example:5000"] == {"endpoint": ["http://lab.corp.example:5000"]}
    assert doc["configs"]["registry.corp.example"] == {
        "tls": {"ca_file": "/etc/rancher/rke2/certs.d/registry.corp.example/ca.crt"},
        "auth": {"username": "robot", "password": "pw-robot-1"},
    }
    assert doc["configs"]["dev.corp.example"] == {"tls": {"insecure_skip_verify": True}}
    assert doc["configs"]["docker.io"] == {"auth": {"username": "hub", "password": "pw-hub-1"}}
    assert "/etc/rancher/rke2/certs.d/registry.corp.example/ca.crt" in files


def test_the_kubelets_config_json_resolves_as_the_keyring_does(ca_pem: str) -> None:
    [written] = kubelet.files(profile(ca_pem), "/var/lib/kubelet")
    assert written.path == "/var/lib/kubelet/config.json" and written.secret
    keyring = Keyring()
    keyring.add(parse_config_json(written.content).auths.items(), "node")
    [corp] = keyring.lookup("registry.corp.example/team/app")
    assert (corp.username, corp.password) == ("robot", "pw-robot-1")
    [hub] = keyring.lookup("docker.io/library/busybox")
    assert hub.username == "hub"
    assert keyring.lookup("lab.corp.example:5000/x") == []
    assert kubelet.files(NodeProfile()) == []


@pytest.mark.parametrize(
    ("mirror", "words"),
    [
        (Mirror("https://proxy.corp.example/quay-cache"), "under /quay-cache/v2, not under /v2/"),
        (
            Mirror("https://art.corp.example/artifactory/api/docker/quay", override_path=True),
            "under /artifactory/api/docker/quay",
        ),
        (Mirror("https://art.corp.example/v2/Hub", override_path=True), "not an image name"),
        (Mirror("https://mirror"), "Docker Hub namespace"),
    ],
)
def test_a_mirror_containers_image_cannot_reach_is_refused(mirror: Mirror, words: str) -> None:
    with pytest.raises(ProfileError) as e:
        containers.mirror_location(mirror, "registries[0].mirrors[1].url")
    assert e.value.field == "registries[0].mirrors[1].url"
    assert words in e.value.message


def test_a_mirror_containers_image_cannot_ask_is_left_out_and_said() -> None:
    unreachable = parse(
        {
            "registries": [
                {"host": "docker.io", "mirrors": ["https://mirror.corp.example:5000"]},
                {
                    "host": "quay.io",
                    "mirrors": ["https://m.corp.example/v2/quay", "https://m.corp.example/q"],
                },
            ]
        }
    )
    [line] = containers.left_out(unreachable)
    assert line.startswith("registries[1].mirrors[1].url: left out of registries.conf: ")
    assert "under /q/v2, not under /v2/" in line
    conf = tomllib.loads(containers.files(unreachable)[0].content.decode())
    quay = next(r for r in conf["registry"] if r["location"] == "quay.io")
    # containerd asks a mirror path that does not end in /v2 at PATH/v2: so does this one.
    assert [m["location"] for m in quay["mirror"]] == ["m.corp.example/quay/v2"]
