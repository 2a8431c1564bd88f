"""Which token servers a registry's login may be sent to.

A registry answers 401 with `WWW-Authenticate: Bearer realm=...` and the client sends the
login to that realm. The registry decides where the password goes, so a stored one goes only
to a realm that is trusted for that registry: over https (plain http only when the registry
itself is served over plain http from the same host), and on the registry's own host, on a
token host well known for it, or on one its credential names.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Registries whose token server lives on another host; the others built in (ghcr.io,
# quay.io, gcr.io, *.pkg.dev, ECR, ACR, Harbor) serve tokens from their own host.
KNOWN_TOKEN_HOSTS: tuple[tuple[str, str], ...] = (
    ("registry-1.docker.io", "auth.docker.io"),
    ("docker.io", "auth.docker.io"),
    ("index.docker.io", "auth.docker.io"),
    ("registry.gitlab.com", "gitlab.com"),
    ("nvcr.io", "authn.nvidia.com"),
    ("docker.elastic.co", "docker-auth.elastic.co"),
)

_TOKEN_HOST = re.compile(
    r"(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?"
)


class RealmError(ValueError):
    """A token host entry that is not a host name."""


def check_token_host(value: str) -> str:
    """A token host as a credential names it: host[:port] or *.domain, lower case."""
    entry = value.strip().lower()
    if not _TOKEN_HOST.fullmatch(entry):
        raise RealmError(
            f"{value!r} is not a token host: write the host[:port] of the token server the "
            "registry names in its realm (e.g. gitlab.example.com), or *.domain"
        )
    return entry


@dataclass(frozen=True, slots=True)
class Untrusted:
    """Why a realm may not receive the login, in words that say how to trust it."""

    realm: str
    reason: str


def _host(netloc: str) -> tuple[str, str]:
    """(host, "host[:port]") of a netloc, lower case, IPv6 without brackets in the host."""
    parts = urlsplit("//" + netloc)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    shown = f"[{host}]" if ":" in host else host
    return host, f"{shown}:{port}" if port else shown


def judge(
    registry: str, registry_scheme: str, realm: str, trusted: Iterable[str] = ()
) -> Untrusted | None:
    """None when the login for `registry` (host[:port], reached over `registry_scheme`) may
    go to `realm`; trusted: the token hosts the credential adds."""
    parts = urlsplit(realm)
    realm_host, netloc = _host(parts.netloc)
    own_host, _ = _host(registry)
    same_host = bool(realm_host) and realm_host == own_host
    if parts.scheme == "http":
        if registry_scheme == "http" and same_host:
            return None
        return Untrusted(
            realm,
            f"the token server {realm} is plain http: the login would cross the network "
            "unencrypted (only a plain-http registry's own host may take it over http)",
        )
    if parts.scheme != "https":
        return Untrusted(realm, f"the token realm {realm!r} is not an https URL")
    if same_host:
        return None
    for pattern in (*(t for r, t in KNOWN_TOKEN_HOSTS if r == own_host), *trusted):
        if fnmatch.fnmatchcase(netloc, pattern) or fnmatch.fnmatchcase(realm_host, pattern):
            return None
    return Untrusted(
        realm,
        f"{registry} sends logins to the token server {netloc}, which is not trusted for it; "
        f"if {netloc} is really its token server, add it to the credential's token hosts "
        "(--token-host on the command line)",
    )
