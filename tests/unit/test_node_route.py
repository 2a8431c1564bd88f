"""core/nodeconfig/route.py: how a node with a profile reaches an image, checked against
containerd's hosts.toml rules (the directory, the mirrors in order, then the server; the
path each is asked under), the files the renderers write for the same profile, and the
kubelet's keyring matching of the config.json `node apply` writes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.registry import pki

from pullkeeper.core.nodeconfig import containerd, containers
from pullkeeper.core.nodeconfig.profile import Mirror, NodeProfile, parse
from pullkeeper.core.nodeconfig.route import route
from pullkeeper.core.reference import InvalidReference

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    issued = pki.certificate_authority(tmp_path_factory.mktemp("ca") / "ca", "Test CA")
    return Path(issued.cert_file).read_text()


@pytest.fixture(scope="module")
def profile(ca_pem: str) -> NodeProfile:
    return parse(
        {
            "registries": [
                {
                    "host": "docker.io",
                    "mirrors": [
                        "https://mirror.corp.example:5000",
                        {"url": "https://art.corp.example/v2/hub", "override_path": True},
                        "http://cache.corp.example:8080/v2",
                    ],
                },
                {"host": "mirror.corp.example:5000", "ca": ca_pem},
                {"host": "art.corp.example", "insecure": "skip_verify"},
                {"host": "registry.corp.example:5000", "ca": ca_pem},
                {"host": "lab.corp.example:5000", "insecure": "http"},
                {"host": "dev.corp.example", "insecure": "skip_verify"},
                {
                    "host": "quay.io",
                    "mirrors": [
                        {
                            "url": "https://art.corp.example/artifactory/api/docker/quay",
                            "override_path": True,
                        },
                        "https://proxy.corp.example/quay-cache",
                    ],
                },
            ],
            "logins": {
                "https://index.docker.io/v1/": {"username": "hub", "password": "pw-hub-1"},
                "registry.corp.example:5000": {"username": "robot", "password": "pw-robot-1"},
                "registry.corp.example": {"username": "noport", "password": "pw-noport-1"},
                "*.corp.example": {"username": "glob", "password": "pw-glob-1"},
                "https://lab.corp.example:5000/v2/team-a": {
                    "username": "team-a",
                    "password": "pw-a",
                },
                "lab.corp.example:5000": {"username": "lab", "password": "pw-lab-1"},
                "quay.io": {"username": "quay", "password": "pw-quay-1"},
            },
        }
    )


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx",
        "docker.io/nginx",
        "docker.io/library/nginx:latest",
        "index.docker.io/library/nginx",
        f"nginx@{DIGEST}",
    ],
)
def test_a_docker_hub_library_image(profile: NodeProfile, image: str) -> None:
    r = route(image, profile)
    assert (r.registry, r.repository, r.hosts_dir, r.in_profile) == (
        "docker.io",
        "library/nginx",
        "docker.io",  # containerd's hosts directory: the reference's domain, not its API host
        True,
    )
    assert [(h.url, h.repository_url) for h in r.hops] == [
        ("https://mirror.corp.example:5000", "https://mirror.corp.example:5000/v2/library/nginx"),
        # override_path: the URL's path stands for /v2
        ("https://art.corp.example/v2/hub", "https://art.corp.example/v2/hub/library/nginx"),
        # a path that ends with /v2 gets no second one
        ("http://cache.corp.example:8080/v2", "http://cache.corp.example:8080/v2/library/nginx"),
        ("https://registry-1.docker.io", "https://registry-1.docker.io/v2/library/nginx"),
    ]
    assert [h.mirror for h in r.hops] == [True, True, True, False]
    # Each mirror trusted as the profile says of its host.
    mirror, art, cache, hub = r.hops
    assert (mirror.ca, mirror.skip_verify, mirror.plain_http) == (True, False, False)
    assert (art.ca, art.skip_verify, art.override_path) == (False, True, True)
    assert (cache.ca, cache.skip_verify, cache.plain_http) == (False, False, True)
    assert (hub.ca, hub.skip_verify, hub.plain_http) == (False, False, False)
    # Only the Docker Hub fallback key matches: nothing else names docker.io.
    assert [c.username for c in r.logins] == ["hub"]


def test_a_docker_hub_user_image_keeps_its_namespace(profile: NodeProfile) -> None:
    r = route("bitnami/redis:7", profile)
    assert r.name == "docker.io/bitnami/redis"
    assert r.mirrors[1].repository_url == "https://art.corp.example/v2/hub/bitnami/redis"


def test_paths_of_mirrors_as_containerd_builds_them(profile: NodeProfile) -> None:
    r = route("quay.io/team/app:v1", profile)
    assert [h.repository_url for h in r.hops] == [
        "https://art.corp.example/artifactory/api/docker/quay/team/app",
        # without override_path /v2 goes after the URL's path
        "https://proxy.corp.example/quay-cache/v2/team/app",
        "https://quay.io/v2/team/app",
    ]
    assert [c.username for c in r.logins] == ["quay"]


@pytest.mark.parametrize(
    ("url", "override", "api_path"),
    [
        ("https://m.example", False, "/v2"),
        ("https://m.example/v2", False, "/v2"),
        ("https://m.example/v2/hub", False, "/v2/hub/v2"),
        ("https://m.example/v2/hub", True, "/v2/hub"),
        ("https://m.example/cache", False, "/cache/v2"),
        ("https://m.example/a/../v2", False, "/v2"),  # cleaned as Go's path.Clean does
        ("https://m.example/a/./b", True, "/a/b"),
    ],
)
def test_the_api_path_of_a_mirror(url: str, override: bool, api_path: str) -> None:
    assert Mirror(url, override).api_path == api_path


def test_a_registry_with_a_port_and_a_digest(profile: NodeProfile, ca_pem: str) -> None:
    r = route(f"registry.corp.example:5000/team/app@{DIGEST}", profile)
    assert (r.registry, r.repository, r.hosts_dir) == (
        "registry.corp.example:5000",
        "team/app",
        "registry.corp.example:5000",
    )
    assert r.mirrors == ()
    assert (r.server.repository_url, r.server.ca) == (
        "https://registry.corp.example:5000/v2/team/app",
        True,
    )
    # The port must be the image's: "registry.corp.example" (no port) and "*.corp.example"
    # (no port) do not match; the key with the port does.
    assert [c.username for c in r.logins] == ["robot"]


def test_logins_matched_with_the_keyrings_glob_label_and_path_rules(
    profile: NodeProfile,
) -> None:
    def users(image: str) -> list[str]:
        return [c.username for c in route(image, profile).logins]

    # A glob matches one label: three labels each; longer (more specific) keys first.
    assert users("registry.corp.example/app") == ["noport", "glob"]
    assert users("dev.corp.example/app") == ["glob"]
    assert users("a.dev.corp.example/app") == []  # four labels
    assert users("corp.example/app") == []  # two labels
    # A key's path is a string prefix of the image's path, /v2/ taken off the key.
    assert users("lab.corp.example:5000/team-a/app") == ["team-a", "lab"]
    assert users("lab.corp.example:5000/team-abc/app") == ["team-a", "lab"]
    assert users("lab.corp.example:5000/team-b/app") == ["lab"]
    # Another port is another registry.
    assert users("lab.corp.example:5001/team-a/app") == []


def test_trust_of_the_registry_itself(profile: NodeProfile) -> None:
    lab = route("lab.corp.example:5000/team-a/app:v1", profile).server
    assert (lab.url, lab.repository_url, lab.plain_http) == (
        "http://lab.corp.example:5000",
        "http://lab.corp.example:5000/v2/team-a/app",
        True,
    )
    dev = route("dev.corp.example/app", profile).server
    assert (dev.repository_url, dev.skip_verify, dev.plain_http, dev.ca) == (
        "https://dev.corp.example/v2/app",
        True,
        False,
        False,
    )


def test_a_registry_the_profile_does_not_name(profile: NodeProfile) -> None:
    r = route("ghcr.io/org/tool:v2", profile)
    assert (r.in_profile, r.mirrors, r.hosts_dir) == (False, (), "ghcr.io")
    assert r.server.repository_url == "https://ghcr.io/v2/org/tool"
    assert (r.server.ca, r.server.skip_verify, r.server.plain_http) == (False, False, False)
    assert r.logins == ()


def test_no_logins_no_credentials(profile: NodeProfile) -> None:
    bare = NodeProfile(profile.registries)
    assert route("nginx", bare).logins == ()
    assert route("nginx", bare).mirrors == route("nginx", profile).mirrors


def test_not_an_image() -> None:
    with pytest.raises(InvalidReference):
        route("Nginx", NodeProfile())


def test_the_route_is_what_containerds_hosts_toml_says(profile: NodeProfile) -> None:
    """The mirrors in the order of the [host] tables node apply writes, then the server."""
    written = {f.path: f.content for f in containerd.files(profile, "/hosts")}
    for image in ("nginx", "quay.io/team/app"):
        r = route(image, profile)
        doc = tomllib.loads(written[f"/hosts/{r.hosts_dir}/hosts.toml"].decode())
        assert doc["server"] == r.server.url
        assert list(doc["host"]) == [h.url for h in r.mirrors]
        for h in r.mirrors:
            assert doc["host"][h.url].get("override_path", False) == h.override_path
            assert doc["host"][h.url].get("skip_verify", False) == h.skip_verify
            assert ("ca" in doc["host"][h.url]) == h.ca


def test_containers_image_asks_the_same_urls(profile: NodeProfile) -> None:
    """A registries.conf mirror is a name prefix: containers-image asks
    https://HOST/v2/PATH/REPOSITORY for location HOST/PATH, the URL the route predicts."""
    docker_hub = NodeProfile(profile.registries[:6], profile.logins)  # quay.io's are refused
    conf = tomllib.loads(containers.registries_conf(docker_hub))
    hub = next(r for r in conf["registry"] if r["location"] == "docker.io")
    r = route("nginx", docker_hub)
    assert len(hub["mirror"]) == len(r.mirrors)
    for mirror, hop in zip(hub["mirror"], r.mirrors, strict=True):
        host, _, prefix = mirror["location"].partition("/")
        scheme = urlsplit(hop.repository_url).scheme
        asked = f"{scheme}://{host}/v2/{prefix + '/' if prefix else ''}{r.repository}"
        assert asked == hop.repository_url
    assert [m["location"] for m in hub["mirror"]] == [
        "mirror.corp.example:5000",
        "art.corp.example/hub",
        "cache.corp.example:8080",
    ]
