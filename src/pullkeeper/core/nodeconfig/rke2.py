"""RKE2's and k3s's registries.yaml (https://docs.rke2.io/install/private_registry): a
mirror list per registry, and per endpoint its TLS (CA file, or verification off) and its
login. Read when rke2-server/rke2-agent (k3s) starts: a change needs their restart.

k3s makes each endpoint a containerd host; an endpoint's path other than "", "/" or "/v2"
stands for `/v2` (containerd's override_path), so a mirror served below a path prefix is
written with its `/v2`."""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import urlsplit

import yaml

from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import DOCKER_HUB, Mirror, NodeProfile

__all__ = ["DEFAULT_PATH", "files", "left_out", "registries_yaml"]

DEFAULT_PATH = "/etc/rancher/rke2/registries.yaml"


def _login_host(key: str) -> str | None:
    """The registry host a login's key (as config.json keys it) names, when it names a whole
    registry: registries.yaml keeps logins per host, not per path, and has no wildcards."""
    text = key.removeprefix("https://").removeprefix("http://")
    host, _, path = text.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io", DOCKER_HUB):
        return DOCKER_HUB  # Docker Hub's key is a URL with a path: https://index.docker.io/v1/
    return None if path.strip("/") or "*" in host else host


def left_out(profile: NodeProfile) -> list[str]:
    """The profile's logins registries.yaml cannot hold, one line each saying why."""
    return [
        f"the login for {key} is left out: registries.yaml keeps a login per registry host, "
        "with no path or wildcard"
        for key in profile.logins
        if _login_host(key) is None
    ]


def _endpoint(m: Mirror) -> str:
    """The mirror as an endpoint k3s sends the same requests to as containerd's hosts.toml:
    its root when containerd asks it at /v2, else the path containerd asks it at (which k3s
    takes for /v2)."""
    parts = urlsplit(m.url)
    api = m.api_path
    return f"{parts.scheme}://{parts.netloc}" + ("" if api == "/v2" else api)


def _auth(login: AuthEntry) -> dict[str, str]:
    return {"username": login.username, "password": login.password}


def registries_yaml(profile: NodeProfile, ca_dir: str) -> str:
    mirrors: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    for r in profile.registries:
        endpoints = [_endpoint(m) for m in r.mirrors]
        if r.insecure == "http":
            endpoints.append(f"http://{r.host}")
        if endpoints:
            mirrors[r.host] = {"endpoint": endpoints}
        config: dict[str, Any] = {}
        if r.insecure == "skip_verify":
            config["tls"] = {"insecure_skip_verify": True}
        elif r.ca_pem:
            config["tls"] = {"ca_file": posixpath.join(ca_dir, r.host, "ca.crt")}
        if config:
            configs[r.host] = config
    # The first login given for a host is its login, as in the profile's order.
    for key, login in profile.logins.items():
        host = _login_host(key)
        if host is not None and "auth" not in configs.get(host, {}):
            configs.setdefault(host, {})["auth"] = _auth(login)
    return yaml.safe_dump({"mirrors": mirrors, "configs": configs}, sort_keys=True)


def files(
    profile: NodeProfile, path: str = DEFAULT_PATH, ca_dir: str = "/etc/rancher/rke2/certs.d"
) -> list[Rendered]:
    out = [
        Rendered(posixpath.join(ca_dir, r.host, "ca.crt"), r.ca_pem.encode())
        for r in profile.registries
        if r.ca_pem and r.insecure != "skip_verify"
    ]
    out.append(Rendered(path, registries_yaml(profile, ca_dir).encode(), secret=True))
    return out
