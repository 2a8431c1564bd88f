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

__all__ = ["DEFAULT_PATH", "files", "registries_yaml"]

DEFAULT_PATH = "/etc/rancher/rke2/registries.yaml"


def _login_key(host: str) -> str:
    return "https://index.docker.io/v1/" if host == DOCKER_HUB else host


def _endpoint(m: Mirror) -> str:
    """The mirror as an endpoint k3s sends the same requests to as containerd's hosts.toml."""
    if m.override_path or urlsplit(m.url).path in ("", "/"):
        return m.url
    return m.url + "/v2"


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
        login: AuthEntry | None = profile.logins.get(_login_key(r.host)) or profile.logins.get(
            r.host
        )
        if login is not None:
            config["auth"] = {"username": login.username, "password": login.password}
        if config:
            configs[r.host] = config
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
