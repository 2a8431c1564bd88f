"""The Docker daemon's registry settings: CAs in `/etc/docker/certs.d/HOST/ca.crt`, and
`insecure-registries` and `registry-mirrors` merged into daemon.json with every other
setting kept. certs.d is read at each pull; daemon.json on a reload (SIGHUP,
`systemctl reload docker`).

The daemon mirrors Docker Hub only, and its mirrors are written at a URL's root only: before
Docker Engine 25.0 a mirror URL with a path stops the daemon from starting ("invalid mirror:
path, query, or fragment at end of the URI"), and later ones put `/v2` after the path, which
an `override_path` mirror does not serve. What of a profile Docker cannot be told is left
out, and `left_out` says so."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import DOCKER_HUB, Mirror, NodeProfile, ProfileError

__all__ = ["INSECURE", "MIRRORS", "ca_files", "left_out", "merge_daemon_json", "ours"]

INSECURE, MIRRORS = "insecure-registries", "registry-mirrors"


def ca_files(profile: NodeProfile, root: str = "/etc/docker") -> list[Rendered]:
    return [
        Rendered(posixpath.join(root, "certs.d", r.host, "ca.crt"), r.ca_pem.encode())
        for r in profile.registries
        if r.ca_pem
    ]


def _at_root(m: Mirror) -> bool:
    return urlsplit(m.url).path in ("", "/")


def ours(profile: NodeProfile) -> dict[str, list[str]]:
    """What the profile puts in daemon.json: its insecure hosts, and Docker Hub's mirrors
    at a URL's root (the only mirrors the daemon takes)."""
    hub = profile.registry(DOCKER_HUB)
    return {
        INSECURE: [r.host for r in profile.registries if r.insecure],
        MIRRORS: [m.url for m in hub.mirrors if _at_root(m)] if hub else [],
    }


def left_out(profile: NodeProfile) -> list[str]:
    """The profile's mirrors daemon.json cannot hold, one line each saying why."""
    lines = []
    for r in profile.registries:
        if r.host != DOCKER_HUB:
            if r.mirrors:
                lines.append(
                    f"the mirrors of {r.host} are left out: Docker mirrors Docker Hub only"
                )
            continue
        for m in r.mirrors:
            if m.override_path:
                lines.append(
                    f"the mirror {m.url} is left out: its path stands for /v2, and Docker puts "
                    "/v2 after a mirror's path"
                )
            elif not _at_root(m):
                lines.append(
                    f"the mirror {m.url} is left out: a mirror's path stops Docker before 25.0 "
                    "from starting (serve the mirror at a URL's root for Docker)"
                )
    return lines


def _list(doc: dict[str, Any], key: str) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"daemon.json {key}", "is not a list of strings: fix it first")
    return value


def merge_daemon_json(
    existing: str, profile: NodeProfile, before: dict[str, Iterable[str]] | None = None
) -> str:
    """daemon.json with the profile's entries in, those `before` (what an earlier profile
    put in) taken out, and the rest as it was; ProfileError when it is not a JSON object."""
    try:
        doc = json.loads(existing) if existing.strip() else {}
    except ValueError as e:
        raise ProfileError("daemon.json", f"is not JSON ({e}): fix it first") from None
    if not isinstance(doc, dict):
        raise ProfileError("daemon.json", "is not a JSON object: fix it first")
    wanted = ours(profile)
    for key in (INSECURE, MIRRORS):
        gone = set((before or {}).get(key, ())) - set(wanted[key])
        kept = [v for v in _list(doc, key) if v not in gone]
        merged = kept + [v for v in wanted[key] if v not in kept]
        if merged:
            doc[key] = merged
        else:
            doc.pop(key, None)
    return json.dumps(doc, indent=2) + "\n"
