"""A node profile made into the files of the runtimes a node runs, merged with the node's
own config.toml and daemon.json, and put in place (node/apply.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pullkeeper.core.nodeconfig import containerd, containers, docker, kubelet, rke2
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import NodeProfile, ProfileError, parse
from pullkeeper.node.apply import DEFAULT_STATE, NodeFiles, Step

__all__ = ["RELOADS", "RUNTIMES", "Layout", "apply", "left_out", "load_profile", "render"]

RUNTIMES = ("containerd", "containers", "docker", "rke2", "kubelet")
# What each runtime needs after its files change, as a user would do it.
RELOADS = {
    "containerd": "containerd reads hosts.toml at each pull; after config.toml changed, "
    "restart it once (systemctl restart containerd)",
    "containers": "CRI-O, podman and skopeo read them at each pull (CRI-O: "
    "systemctl reload crio for registries.conf)",
    "docker": "Docker reads certs.d at each pull; after daemon.json changed: "
    "systemctl reload docker",
    "rke2": "RKE2 and k3s read registries.yaml when they start: systemctl restart rke2-server "
    "(or rke2-agent, k3s)",
    # The kubelet keeps what it read of config.json for 5 minutes (its caching provider).
    "kubelet": "the kubelet reads config.json again within 5 minutes: no restart",
}


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a node keeps each runtime's files (paths on the node)."""

    containerd_config: str = "/etc/containerd/config.toml"
    containerd_hosts: str = containerd.DEFAULT_CONFIG_PATH
    containers: str = "/etc/containers"
    docker: str = "/etc/docker"
    rke2: str = rke2.DEFAULT_PATH
    kubelet_root_dir: str = kubelet.DEFAULT_ROOT_DIR
    state: str = DEFAULT_STATE


def load_profile(text: str, source: str) -> NodeProfile:
    """The profile in a YAML or JSON document; ProfileError naming the source and field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ProfileError(source, f"is not YAML or JSON{where}") from None
    except RecursionError:  # PyYAML recurses once per nesting level
        raise ProfileError(source, "is nested too deeply to be a node profile") from None
    try:
        return parse(doc)
    except ProfileError as e:
        raise ProfileError(f"{source}: {e.field}", e.message) from None


def left_out(profile: NodeProfile, runtimes: Sequence[str]) -> list[str]:
    """What of the profile a runtime's files cannot hold, one line each naming the runtime."""
    found = {"containers": containers.left_out, "docker": docker.left_out, "rke2": rke2.left_out}
    return [
        f"{runtime}: {line}"
        for runtime, left_out_of in found.items()
        if runtime in runtimes
        for line in left_out_of(profile)
    ]


def render(
    profile: NodeProfile, runtimes: Sequence[str], layout: Layout, root: Path
) -> list[Rendered]:
    """Every file the runtimes read for the profile, the node's own files (under `root`)
    merged as they are now."""
    return _render(profile, runtimes, layout, NodeFiles(root, layout.state))[0]


def _render(
    profile: NodeProfile,
    runtimes: Sequence[str],
    layout: Layout,
    files: NodeFiles,
) -> tuple[list[Rendered], dict[str, Any]]:
    """render(), and what was merged into the node's own files (for the next apply to take
    out)."""
    out: list[Rendered] = []
    notes: dict[str, Any] = {}
    if "containerd" in runtimes:
        out += containerd.files(profile, layout.containerd_hosts)
        current = _text(files, layout.containerd_config)
        merged = containerd.enable_config_path(current, layout.containerd_hosts)
        out.append(Rendered(layout.containerd_config, merged.encode(), merged=True))
    if "containers" in runtimes:
        out += containers.files(profile, layout.containers)
    if "docker" in runtimes:
        out += docker.ca_files(profile, layout.docker)
        daemon_json = f"{layout.docker}/daemon.json"
        before = files.notes().get("docker")
        merged = docker.merge_daemon_json(_text(files, daemon_json), profile, before)
        out.append(Rendered(daemon_json, merged.encode(), merged=True))
        notes["docker"] = docker.ours(profile)
    if "rke2" in runtimes:
        out += rke2.files(profile, layout.rke2)
    if "kubelet" in runtimes:
        out += kubelet.files(profile, layout.kubelet_root_dir)
    return out, notes


def _text(files: NodeFiles, path: str) -> str:
    found = files.root / path.lstrip("/")
    try:
        return found.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise ProfileError(path, "is not UTF-8 text: fix it first") from None


def apply(
    profile: NodeProfile,
    runtimes: Sequence[str],
    layout: Layout,
    root: Path,
    *,
    take_over: bool = False,
    dry_run: bool = False,
) -> list[Step]:
    """The profile's files put in place under `root` (or, with dry_run, what would change);
    node.apply.Refused when a file would not be changed."""
    files = NodeFiles(root, layout.state)
    wanted, notes = _render(profile, runtimes, layout, files)
    return files.apply(wanted, take_over=take_over, dry_run=dry_run, notes=notes)
