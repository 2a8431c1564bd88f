"""Registry policy values: default registry, allowlist, always-pull, and their inheritance."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from pullkeeper.core.providers import HOST_PORT

# A path prefix as distribution writes repository paths (lowercase components).
_PATH = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*"
_DEFAULT_REGISTRY = re.compile(HOST_PORT.pattern + "(?:/" + _PATH + ")?")
_WILDCARD = re.compile(r"\*\.(?:" + HOST_PORT.pattern + ")")
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io"})


class PolicyError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy; None in a field means "inherit"."""

    default_registry: str | None = None
    allowlist: tuple[str, ...] | None = None
    always_pull: bool | None = None
    # ServiceAccount mode: which ServiceAccounts get the delivered Secrets ("*": all; empty: off).
    service_accounts: tuple[str, ...] | None = None
    require_digest: bool | None = None
    forbid_latest: bool | None = None  # an explicit :latest, or neither tag nor digest
    # What the webhook does with a violation: "enforce" (deny), "warn", "audit" (record only).
    mode: str | None = None

    def over(self, parent: Policy) -> Policy:
        """This policy with its unset fields taken from parent (project over cluster)."""
        return Policy(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(parent, f.name)
                for f in fields(self)
            }
        )


# The fields a policy sets, in the order the API and the command line show them.
FIELDS = tuple(f.name for f in fields(Policy))


def check_default_registry(value: str) -> str:
    if value.startswith(("http://", "https://")) or not _DEFAULT_REGISTRY.fullmatch(value):
        raise PolicyError(
            "default_registry",
            f"{value!r} is not a default registry: write host[:port] or host[:port]/path-prefix, "
            "without a scheme (e.g. mirror.example.com or harbor.example.com/dockerhub)",
        )
    return value


def check_allowlist_entry(value: str) -> str:
    host, _, path = value.partition("/")
    ok_host = bool(HOST_PORT.fullmatch(host) or _WILDCARD.fullmatch(host))
    if not ok_host or (path and (host.startswith("*") or not re.fullmatch(_PATH, path))):
        raise PolicyError(
            "allowlist",
            f"{value!r} is not an allowlist entry: write a registry host[:port], a wildcard "
            "*.example.com, or a repository subtree host[:port]/path",
        )
    return value


def policy_warnings(p: Policy) -> list[str]:
    """What a user likely did not mean. The API server runs mutating admission before
    validating admission, so an unqualified image is first rewritten to the default registry,
    then held against the allowlist: a default registry the allowlist refuses refuses every
    such image. Without a default registry they stay Docker Hub's (seed 004: Docker Hub must
    then be listed to stay allowed)."""
    allowlist = p.allowlist or ()
    if not allowlist:
        return []
    if p.default_registry:
        host, _, prefix = p.default_registry.partition("/")
        rewritten = f"{prefix}/library/nginx" if prefix else "library/nginx"
        if allowlist_admits(allowlist, host, rewritten):
            return []
        return [
            f"the default registry {p.default_registry} is not on the allowlist: every image "
            f"that names no registry (nginx) is rewritten to {p.default_registry}/library/nginx "
            f"and then refused; add {p.default_registry} to the allowlist"
        ]
    if not any(e.split("/", 1)[0] in DOCKER_HUB_NAMES for e in allowlist):
        return [
            "Docker Hub is not on the allowlist: images such as nginx (docker.io) will be "
            "refused; add docker.io to allow them"
        ]
    return []


def _host(name: str) -> str:
    host = name.lower()
    return "docker.io" if host in DOCKER_HUB_NAMES else host


def allowlist_admits(allowlist: tuple[str, ...], domain: str, path: str) -> bool:
    """Whether a normalized reference (domain, repository path) is on the allowlist.

    Matching is on the parsed reference, never on a string prefix: `example.com`
    does not admit `example.com.evil.net`, `*.example.com` admits any subdomain
    but not the apex, and `host/team` admits `host/team` and `host/team/app` but
    not `host/teamx`.
    """
    host = _host(domain)
    for entry in allowlist:
        entry_host, _, subtree = entry.partition("/")
        if entry_host.startswith("*."):
            if not host.endswith(entry_host[1:].lower()):
                continue
        elif _host(entry_host) != host:
            continue
        if not subtree or path == subtree or path.startswith(subtree + "/"):
            return True
    return False
