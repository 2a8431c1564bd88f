"""A node profile: for each registry its nodes pull from, the CA its TLS certificate is
checked with, whether it is insecure (plain HTTP, or TLS not verified) and which mirrors
to try first; and the logins the nodes pull with. Checked as given: every error names its
field, as a path into the document (`registries[2].mirrors[0]`)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from pullkeeper.core.dockerconfig import AuthEntry, InvalidUsername, check_username

__all__ = [
    "DOCKER_HUB",
    "INSECURE",
    "Mirror",
    "NodeProfile",
    "ProfileError",
    "RegistryConfig",
    "parse",
    "registry_doc",
]

DOCKER_HUB = "docker.io"
# insecure: "http" (plain HTTP, as docker's --insecure-registry falls back to) or
# "skip_verify" (HTTPS whose certificate is not checked).
INSECURE = ("http", "skip_verify")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:]+\])(?::[0-9]{{1,5}})?")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*/?")


class ProfileError(ValueError):
    """A profile that cannot be used; `field` is where in it, `message` what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Mirror:
    """A registry tried before the one it mirrors: `url` is scheme://host[:port][/path];
    with `override_path`, the path stands for the registry API's `/v2` (a path-prefixed
    mirror, as Artifactory and Harbor proxies serve one)."""

    url: str
    override_path: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")

    @property
    def api_path(self) -> str:
        """The path containerd puts the repository after (hosts.toml's rule): the URL's path
        as it is with override_path, else with /v2 added unless it ends so already."""
        path = urlsplit(self.url).path
        path = posixpath.normpath(path) if path else ""  # Go's path.Clean, "" kept
        if self.override_path or path.endswith("/v2"):
            return path
        return path + "/v2"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    host: str  # host[:port] as image references name it; docker.io for Docker Hub
    ca_pem: str = ""  # the CA its certificate is checked with (PEM), "" for the system's
    insecure: str | None = None  # one of INSECURE
    mirrors: tuple[Mirror, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeProfile:
    registries: tuple[RegistryConfig, ...] = ()
    # The logins nodes pull with, by registry key (as config.json's `auths` keys them).
    logins: Mapping[str, AuthEntry] = field(default_factory=dict)

    def registry(self, host: str) -> RegistryConfig | None:
        return next((r for r in self.registries if r.host == host), None)


def _text(doc: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProfileError(f"{where}.{key}", "must be a string")
    return value


def _host(value: str, where: str) -> str:
    if "://" in value or "/" in value:
        raise ProfileError(
            where,
            f"{value!r} is a host[:port] without a scheme or path (registry.example.com:5000)",
        )
    if not _HOST.fullmatch(value):
        raise ProfileError(where, f"{value!r} is not a host[:port] (lower case, no scheme)")
    return value


def _ca(pem: str, where: str) -> str:
    if not pem:
        return ""
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ProfileError(
            where, "is not a PEM certificate (-----BEGIN CERTIFICATE-----): give the CA's"
        ) from None
    if not certs:
        raise ProfileError(where, "holds no certificate")
    return pem if pem.endswith("\n") else pem + "\n"


def _mirror(doc: Any, where: str) -> Mirror:
    if isinstance(doc, str):
        doc = {"url": doc}
    if not isinstance(doc, Mapping):
        raise ProfileError(where, "is a URL, or {url, override_path}")
    url = _text(doc, "url", where)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProfileError(f"{where}.url", f"{url!r} is not an http:// or https:// URL")
    _host(parts.netloc, f"{where}.url")
    if parts.query or parts.fragment or not _PATH.fullmatch(parts.path):
        raise ProfileError(f"{where}.url", f"{url!r} has a query, fragment or odd path")
    override = doc.get("override_path", False)
    if not isinstance(override, bool):
        raise ProfileError(f"{where}.override_path", "must be true or false")
    if override and parts.path in ("", "/"):
        raise ProfileError(f"{where}.override_path", "needs a path in the URL to stand for /v2")
    return Mirror(url.rstrip("/"), override)


def _registry(doc: Any, where: str) -> RegistryConfig:
    if not isinstance(doc, Mapping):
        raise ProfileError(where, "is a mapping with host, and ca, insecure, mirrors")
    unknown = sorted(set(doc) - {"host", "ca", "insecure", "mirrors"})
    if unknown:
        raise ProfileError(f"{where}.{unknown[0]}", "is not a field of a registry")
    host = _host(_text(doc, "host", where), f"{where}.host")
    insecure = doc.get("insecure")
    if insecure is not None and insecure not in INSECURE:
        raise ProfileError(f"{where}.insecure", "is http, skip_verify, or left out")
    ca = _ca(_text(doc, "ca", where), f"{where}.ca")
    if ca and insecure == "http":
        raise ProfileError(f"{where}.ca", "a plain-HTTP registry has no certificate to check")
    mirrors = doc.get("mirrors") or []
    if not isinstance(mirrors, list):
        raise ProfileError(f"{where}.mirrors", "is a list")
    found = tuple(_mirror(m, f"{where}.mirrors[{i}]") for i, m in enumerate(mirrors))
    for i, m in enumerate(found):
        if m.host == host:
            raise ProfileError(f"{where}.mirrors[{i}]", f"{host} cannot mirror itself")
    return RegistryConfig(host, ca, insecure, found)


def _no_loops(registries: Sequence[RegistryConfig]) -> None:
    """No registry is reached again through its mirrors (or their mirrors, as registries of
    the profile)."""
    mirrors = {r.host: [m.host for m in r.mirrors] for r in registries}

    def walk(path: list[str], i: int) -> None:
        for step in mirrors.get(path[-1], ()):
            if step == path[0]:
                loop = " -> ".join([*path, step])
                raise ProfileError(f"registries[{i}].mirrors", f"the mirrors loop: {loop}")
            if step not in path:
                walk([*path, step], i)

    for i, r in enumerate(registries):
        walk([r.host], i)


def _login(doc: Any, where: str) -> AuthEntry:
    if not isinstance(doc, Mapping):
        raise ProfileError(where, "is a mapping with username and password")
    username, password = _text(doc, "username", where), _text(doc, "password", where)
    if not username or not password:
        raise ProfileError(where, "needs a username and a password")
    try:
        check_username(username)
    except InvalidUsername as e:
        raise ProfileError(f"{where}.username", str(e)) from None
    return AuthEntry(username, password, _text(doc, "email", where))


def parse(doc: Any) -> NodeProfile:
    """The profile a document (parsed JSON or YAML) describes, or ProfileError."""
    if not isinstance(doc, Mapping):
        raise ProfileError("profile", "is a mapping with registries and logins")
    unknown = sorted(set(doc) - {"registries", "logins"})
    if unknown:
        raise ProfileError(unknown[0], "is not a field of a node profile")
    given = doc.get("registries") or []
    if not isinstance(given, list):
        raise ProfileError("registries", "is a list")
    registries = tuple(_registry(r, f"registries[{i}]") for i, r in enumerate(given))
    hosts: dict[str, int] = {}
    for i, r in enumerate(registries):
        if r.host in hosts:
            raise ProfileError(
                f"registries[{i}].host", f"{r.host} is given already (registries[{hosts[r.host]}])"
            )
        hosts[r.host] = i
    _no_loops(registries)
    logins = doc.get("logins") or {}
    if not isinstance(logins, Mapping):
        raise ProfileError("logins", "is a mapping of registry to {username, password}")
    return NodeProfile(
        registries, {str(k): _login(v, f"logins.{k}") for k, v in sorted(logins.items())}
    )


def registry_doc(r: RegistryConfig) -> dict[str, Any]:
    """A registry as a profile document writes it (what parse reads back as `r`)."""
    doc: dict[str, Any] = {"host": r.host}
    if r.ca_pem:
        doc["ca"] = r.ca_pem
    if r.insecure:
        doc["insecure"] = r.insecure
    if r.mirrors:
        doc["mirrors"] = [
            {"url": m.url, "override_path": True} if m.override_path else m.url for m in r.mirrors
        ]
    return doc
