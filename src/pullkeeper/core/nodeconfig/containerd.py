"""containerd's registry hosts (https://github.com/containerd/containerd/blob/main/docs/hosts.md):
`CONFIG_PATH/HOST/hosts.toml` for each registry of a profile, its CA beside it, and the
one setting of config.toml that makes containerd read them, merged into the rest.

containerd reads hosts.toml at each pull: a change needs no restart; config.toml's
`config_path` does (once).
"""

from __future__ import annotations

import posixpath
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import (
    DOCKER_HUB,
    NodeProfile,
    ProfileError,
    RegistryConfig,
)

__all__ = ["DEFAULT_CONFIG_PATH", "enable_config_path", "files", "server_url"]

DEFAULT_CONFIG_PATH = "/etc/containerd/certs.d"
# Where config_path is set: the CRI plugin's registry table, by config.toml version
# (version 2: containerd 1.x; version 3: containerd 2.x).
_CRI_REGISTRY = {
    2: ("io.containerd.grpc.v1.cri", "registry"),
    3: ("io.containerd.cri.v1.images", "registry"),
}
_PULL = ["pull", "resolve"]


def server_url(r: RegistryConfig) -> str:
    """hosts.toml's `server`: where containerd asks the registry itself, after its mirrors."""
    if r.host == DOCKER_HUB:
        return "https://registry-1.docker.io"
    return f"{'http' if r.insecure == 'http' else 'https'}://{r.host}"


def _trust(table: Any, r: RegistryConfig | None, ca_file: str | None) -> None:
    if r is not None and r.insecure == "skip_verify":
        table["skip_verify"] = True
    elif ca_file:
        table["ca"] = ca_file


def hosts_toml(profile: NodeProfile, r: RegistryConfig, ca_files: dict[str, str]) -> str:
    """The registry's hosts.toml: its mirrors first (each trusted as the profile says of its
    host), then the registry itself, with its own CA or skip_verify."""
    doc = tomlkit.document()
    doc["server"] = server_url(r)
    _trust(doc, r, ca_files.get(r.host))
    hosts = tomlkit.table(is_super_table=True)
    for m in r.mirrors:
        entry = tomlkit.table()
        entry["capabilities"] = _PULL
        _trust(entry, profile.registry(m.host), ca_files.get(m.host))
        if m.override_path:
            entry["override_path"] = True
        hosts[m.url] = entry
    if not r.mirrors:
        # containerd 1.6 tries [host] entries and falls back to `server` only on some errors:
        # the registry itself is its one host, trusted as the server is.
        entry = tomlkit.table()
        entry["capabilities"] = _PULL
        _trust(entry, r, ca_files.get(r.host))
        hosts[server_url(r)] = entry
    doc["host"] = hosts
    return tomlkit.dumps(doc)


def files(profile: NodeProfile, config_path: str = DEFAULT_CONFIG_PATH) -> list[Rendered]:
    """Every file containerd reads for the profile under config_path."""
    ca_files = {
        r.host: posixpath.join(config_path, r.host, "ca.crt")
        for r in profile.registries
        if r.ca_pem
    }
    out: list[Rendered] = []
    for r in profile.registries:
        directory = posixpath.join(config_path, r.host)
        if r.ca_pem:
            out.append(Rendered(ca_files[r.host], r.ca_pem.encode()))
        out.append(
            Rendered(
                posixpath.join(directory, "hosts.toml"),
                hosts_toml(profile, r, ca_files).encode(),
            )
        )
    return out


def enable_config_path(config_toml: str, config_path: str = DEFAULT_CONFIG_PATH) -> str:
    """config.toml with the CRI plugin reading hosts from config_path, all else as it was
    (comments and layout kept); ProfileError when containerd could not take it."""
    try:
        doc = tomlkit.parse(config_toml)
    except TOMLKitError as e:
        raise ProfileError("config.toml", f"is not TOML ({e}): fix it first") from None
    version = doc.get("version", 1 if config_toml.strip() else 2)
    if not config_toml.strip():
        doc["version"] = 2
    if version not in _CRI_REGISTRY:
        raise ProfileError(
            "config.toml",
            f"is version {version}: containerd reads hosts.toml from config files of version 2 "
            "or 3 (containerd config migrate)",
        )
    plugin, name = _CRI_REGISTRY[version]
    plugins = doc.setdefault("plugins", tomlkit.table(is_super_table=True))
    cri = plugins.setdefault(plugin, tomlkit.table(is_super_table=True))
    registry = cri.setdefault(name, tomlkit.table())
    legacy = [k for k in ("mirrors", "configs") if k in registry]
    if legacy:
        raise ProfileError(
            "config.toml",
            f"sets registry.{legacy[0]} (the old way): containerd refuses it beside config_path;"
            " move those settings to hosts.toml files first",
        )
    registry["config_path"] = config_path
    return tomlkit.dumps(doc)
