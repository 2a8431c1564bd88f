"""The Docker daemon's registry settings: CAs in `/etc/docker/certs.d/HOST/ca.crt`, and
`insecure-registries` and `registry-mirrors` merged into daemon.json with every other
setting kept. certs.d is read at each pull; daemon.json on a reload (SIGHUP,
`systemctl reload docker`)."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import DOCKER_HUB, NodeProfile, ProfileError

__all__ = ["INSECURE", "MIRRORS", "ca_files", "merge_daemon_json", "ours"]

INSECURE, MIRRORS = "insecure-registries", "registry-mirrors"


def ca_files(profile: NodeProfile, root: str = "/etc/docker") -> list[Rendered]:
    return [
        Rendered(posixpath.join(root, "certs.d", r.host, "ca.crt"), r.ca_pem.encode())
        for r in profile.registries
        if r.ca_pem
    ]


def ours(profile: NodeProfile) -> dict[str, list[str]]:
    """What the profile puts in daemon.json: its insecure hosts, and Docker Hub's mirrors
    (the only registry the daemon mirrors)."""
    hub = profile.registry(DOCKER_HUB)
    return {
        INSECURE: [r.host for r in profile.registries if r.insecure],
        MIRRORS: [m.url for m in hub.mirrors] if hub else [],
    }


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
