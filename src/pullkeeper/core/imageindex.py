"""Manifest lists and OCI indexes built from images (`docker manifest create/annotate`).

An index under construction is a list of entries, one per image manifest:
where it came from, its descriptor, and the platform it is for. The document
pushed is a Docker manifest list when every entry is a Docker schema 2
manifest, else an OCI index, as distribution and containerd expect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pullkeeper.core import oci

# GOOS/GOARCH pairs Go builds for: what an image platform may name (docker refuses others).
_OS_ARCH = {
    "aix": {"ppc64"},
    "android": {"386", "amd64", "arm", "arm64"},
    "darwin": {"amd64", "arm64"},
    "dragonfly": {"amd64"},
    "freebsd": {"386", "amd64", "arm", "arm64", "riscv64"},
    "illumos": {"amd64"},
    "ios": {"amd64", "arm64"},
    "js": {"wasm"},
    "linux": {
        "386",
        "amd64",
        "arm",
        "arm64",
        "loong64",
        "mips",
        "mips64",
        "mips64le",
        "mipsle",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
    },
    "netbsd": {"386", "amd64", "arm", "arm64"},
    "openbsd": {"386", "amd64", "arm", "arm64", "ppc64", "riscv64"},
    "plan9": {"386", "amd64", "arm"},
    "solaris": {"amd64"},
    "wasip1": {"wasm"},
    "windows": {"386", "amd64", "arm", "arm64"},
}


class IndexBuildError(ValueError):
    """An index that cannot be built as asked; the message says what to change."""


def check_platform(platform: oci.Platform) -> None:
    """Refuse an os/arch pair no Go toolchain builds for, as `docker manifest annotate` does."""
    arches = _OS_ARCH.get(platform.os)
    if arches is None:
        raise IndexBuildError(
            f"unknown operating system {platform.os!r}; use one of {', '.join(sorted(_OS_ARCH))}"
        )
    if platform.architecture not in arches:
        raise IndexBuildError(
            f"{platform.os}/{platform.architecture} is not a known os/arch combination; "
            f"{platform.os} has {', '.join(sorted(arches))}"
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """One image of the index: the reference it was added as, and its descriptor."""

    image: str  # the normalized reference given to `create`
    repository: str  # the repository it lives in, in the index's registry
    media_type: str
    digest: str
    size: int
    platform: oci.Platform
    os_features: tuple[str, ...] = ()

    def descriptor(self) -> dict[str, Any]:
        platform: dict[str, Any] = {
            "architecture": self.platform.architecture,
            "os": self.platform.os,
        }
        if self.platform.os_version:
            platform["os.version"] = self.platform.os_version
        if self.os_features:
            platform["os.features"] = list(self.os_features)
        if self.platform.variant:
            platform["variant"] = self.platform.variant
        return {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
            "platform": platform,
        }

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "repository": self.repository, **self.descriptor()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        p = raw["platform"]
        return cls(
            image=str(raw["image"]),
            repository=str(raw["repository"]),
            media_type=str(raw["mediaType"]),
            digest=str(raw["digest"]),
            size=int(raw["size"]),
            platform=oci.Platform(
                str(p["os"]),
                str(p["architecture"]),
                str(p.get("variant", "")),
                str(p.get("os.version", "")),
            ),
            os_features=tuple(str(f) for f in p.get("os.features", ())),
        )


@dataclass(frozen=True, slots=True)
class Index:
    """A manifest list being built: its name and entries, and the format asked for."""

    name: str  # the normalized reference it will be pushed as
    entries: tuple[Entry, ...] = ()
    format: str = "auto"  # "auto", "oci" or "docker"

    @property
    def media_type(self) -> str:
        if self.format == "oci":
            return oci.OCI_INDEX
        if self.format == "docker":
            return oci.DOCKER_LIST
        if self.entries and all(e.media_type == oci.DOCKER_MANIFEST for e in self.entries):
            return oci.DOCKER_LIST
        return oci.OCI_INDEX

    def with_entries(self, entries: Sequence[Entry]) -> Index:
        """The entries added; one that names an image already in the index replaces it."""
        kept = {e.digest: e for e in self.entries}
        for entry in entries:
            kept[entry.digest] = entry
        return replace(self, entries=tuple(kept.values()))

    def find(self, image: str) -> Entry:
        """The entry added as image (a normalized reference) or with that digest."""
        for entry in self.entries:
            if image in (entry.image, entry.digest) or image.endswith("@" + entry.digest):
                return entry
        listed = ", ".join(e.image for e in self.entries) or "none"
        raise IndexBuildError(f"{image} is not in {self.name} (it holds: {listed})")

    def annotated(self, image: str, platform: oci.Platform, os_features: Sequence[str]) -> Index:
        check_platform(platform)
        target = self.find(image)
        entries = tuple(
            replace(e, platform=platform, os_features=tuple(os_features)) if e is target else e
            for e in self.entries
        )
        return replace(self, entries=entries)

    def render(self) -> bytes:
        """The document to push: compact JSON, in the order entries were added."""
        if not self.entries:
            raise IndexBuildError(f"{self.name} has no images; add some with `manifest create`")
        seen: dict[tuple[str, str, str, str], str] = {}
        for e in self.entries:
            check_platform(e.platform)
            p = e.platform.normalized()
            key = (p.os, p.architecture, p.variant, p.os_version)
            if key in seen:
                raise IndexBuildError(
                    f"{seen[key]} and {e.image} are both for {e.platform}; a runtime would pick "
                    "one at random: remove one, or annotate it with another platform"
                )
            seen[key] = e.image
        doc = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [e.descriptor() for e in self.entries],
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "media_type": self.media_type,
            "entries": [e.as_dict() for e in self.entries],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Index:
        return cls(
            name=str(raw["name"]),
            format=str(raw.get("format", "auto")),
            entries=tuple(Entry.from_dict(e) for e in raw.get("entries", ())),
        )
