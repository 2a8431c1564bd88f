"""What a node configured by a node profile does with an image: the credentials the kubelet
tries (the pod's Secrets, then the node's config.json as `node apply` writes it from the
profile's logins) and the way the runtime goes (the mirrors first, then the registry), for
`creds resolve` and `check` with --node-profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pullkeeper.core.nodeconfig import kubelet
from pullkeeper.core.nodeconfig.profile import NodeProfile, ProfileError
from pullkeeper.core.nodeconfig.route import Route, route
from pullkeeper.core.reference import InvalidReference
from pullkeeper.services import config_files, node_files, pull_trial
from pullkeeper.services.config_files import InputError, Resolution

__all__ = ["NodeCheck", "Prediction", "ProfileFile", "check_candidates", "load", "resolve"]


@dataclass(frozen=True, slots=True)
class ProfileFile:
    label: str  # the file as it was named
    profile: NodeProfile

    @property
    def source(self) -> str:
        """How a credential of the node's config.json written from the profile is named."""
        return f"node config.json ({self.label})"

    def config_json(self) -> list[tuple[str, bytes]]:
        """The kubelet's config.json `node apply` writes (none without logins)."""
        return [(self.source, f.content) for f in kubelet.files(self.profile)]


def load(path: str) -> ProfileFile:
    """The node profile in the file at path; InputError naming the file (and the field)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot be read ({e.__class__.__name__})") from None
    try:
        return ProfileFile(path, node_files.load_profile(text, path))
    except ProfileError as e:
        raise InputError(f"{e.field}: {e.message}") from None


def _route(image: str, profile: ProfileFile) -> Route:
    try:
        return route(image, profile.profile, profile.source)
    except InvalidReference as e:
        raise InputError(f"{image!r} is not a valid image reference: {e}") from None


def _route_dict(r: Route, profile: ProfileFile) -> dict[str, Any]:
    return {"profile": profile.label, **r.as_dict()}


@dataclass(slots=True)
class Prediction:
    resolution: Resolution
    route: Route
    node_profile: dict[str, Any]  # the route, as data


def resolve(
    image: str,
    config_paths: Sequence[str],
    node_config_paths: Sequence[str],
    profile: ProfileFile,
    *,
    normalize: bool = True,
) -> Prediction:
    """config_files.resolve with the node's config.json the profile's, and the route.

    The kubelet reads one config.json, the first it finds: its root directory's, where
    `node apply` writes the profile's logins, comes first. Only a profile without logins
    (then none is written there) leaves the node's other config.json (node_config_paths) in
    use.
    """
    written = profile.config_json()
    shadowed = list(node_config_paths) if written else []
    result = config_files.resolve(
        image,
        config_paths,
        () if written else node_config_paths,
        normalize=normalize,
        node_contents=written,
    )
    result.warnings[:0] = [
        f"{p}: not read: the kubelet reads one config.json, the first it finds, and looks "
        f"first in its root directory, where node apply writes the logins of {profile.label}"
        for p in shadowed
    ]
    r = _route(image, profile)
    described = _route_dict(r, profile)
    described["relies_on_node"] = bool(result.matches) and result.node_from == 0
    return Prediction(result, r, described)


@dataclass(slots=True)
class NodeCheck:
    """The credentials a check tries for an image on a node with the profile: the pod's
    (the --config files), then the node's; and the route, as data."""

    pod: list[pull_trial.Candidate]
    node: list[pull_trial.Candidate]
    node_profile: dict[str, Any]
    warnings: list[str]


def check_candidates(image: str, config_paths: Sequence[str], profile: ProfileFile) -> NodeCheck:
    result = config_files.resolve(image, config_paths, node_contents=profile.config_json())
    found = pull_trial.candidates_from_keyring(result.matches)
    pod, node = found[: result.node_from], found[result.node_from :]
    described = _route_dict(_route(image, profile), profile)
    described.update(
        pod_credentials=len(pod),
        node_credentials=len(node),
        # No Secret of the pod's has a credential for the image: only the node's can be used.
        relies_on_node=not pod and bool(node),
    )
    return NodeCheck(pod, node, described, result.warnings)
