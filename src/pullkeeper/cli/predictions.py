"""The lines `creds resolve` and `check` print of a node profile's way to an image: the
mirrors the runtime asks first and the URL each is asked under, then the registry, and
whether the credentials rest on the node's config.json."""

from __future__ import annotations

from typing import Any

__all__ = ["route_lines"]


def _trust(hop: dict[str, Any]) -> str:
    if hop["plain_http"]:
        return " (plain HTTP)"
    if hop["skip_verify"]:
        return " (TLS not verified)"
    if hop["ca"]:
        return " (TLS checked with the profile's CA)"
    return ""


def route_lines(d: dict[str, Any], width: int, *, credentials: bool) -> list[str]:
    """The lines for a node_profile answer (labels padded to width); `credentials` says
    whether the kubelet has any credential to give the runtime for the image."""

    def pad(label: str) -> str:
        return f"{label}:".ljust(width)

    registry, server, mirrors = d["registry"], d["server"], d["mirrors"]
    lines = []
    if d.get("relies_on_node"):
        lines.append(
            pad("node")
            + "relies on the node's config.json: no credential of the pod's is for this image"
        )
    if not d["in_profile"]:
        lines.append(
            pad("route") + f"{d['profile']} says nothing of {registry}: the runtime asks "
            f"{server['repository_url']} as it would without it"
        )
        return lines
    if not mirrors:
        lines.append(pad("route") + f"{server['repository_url']}{_trust(server)}, no mirror")
        return lines
    lines.append(
        pad("mirrors") + f"the runtime tries these first, in order, then {registry} itself:"
    )
    for m in mirrors:
        override = ", override_path" if m["override_path"] else ""
        lines.append(
            f"  through mirror {m['url']}{override}: asks {m['repository_url']}{_trust(m)}"
        )
    lines.append(f"  then {registry}: asks {server['repository_url']}{_trust(server)}")
    if credentials:
        lines.append(
            f"  each credential the kubelet tries goes to the mirrors too, not only to {registry}"
            " (the kubelet names no server with it; containerd and CRI-O send it to every host"
            " they ask)"
        )
    return lines
