"""Image manifests and indexes (OCI image spec, Docker schema 2) and platforms.

Platform names follow containerd's normalization, which is what the kubelet's
runtime uses to pick an entry of an index: `x86_64` is `amd64`, `aarch64` is
`arm64`, `arm64/v8` is plain `arm64`, `arm` without a variant is `arm/v7`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# What a client that understands every current format sends as Accept.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


class ManifestFormatError(ValueError):
    """Bytes that are not a manifest or index this module understands."""


# The OCI image spec's digest grammar: algorithm ":" encoded.
DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, digest: str) -> bool:
    """Whether data has this digest (sha256 and sha512; other algorithms are not verifiable)."""
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        return False
    return hashlib.new(algorithm, data).hexdigest() == hexdigest


# --------------------------------------------------------------------------- platforms

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_OS = {"macos": "darwin"}


@dataclass(frozen=True, slots=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]`, as `--platform` takes it; normalized."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(
                f"{text!r} is not a platform; write os/arch[/variant], e.g. linux/arm64"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "").normalized()

    def normalized(self) -> Platform:
        os_ = _OS.get(self.os.lower(), self.os.lower())
        arch, variant = (
            _ARCH.get(self.architecture.lower(), self.architecture.lower()),
            self.variant,
        )
        if (arch, variant) in (("arm64", "8"), ("arm64", "v8"), ("arm64", "v8.0"), ("amd64", "v1")):
            variant = ""
        elif arch == "armhf":
            arch, variant = "arm", "v7"
        elif arch == "armel":
            arch, variant = "arm", "v6"
        elif arch == "arm":
            variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
        return Platform(os_, arch, variant, self.os_version)

    def matches(self, other: Platform) -> bool:
        a, b = self.normalized(), other.normalized()
        return (a.os, a.architecture, a.variant) == (b.os, b.architecture, b.variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest (kind "image") or index / manifest list (kind "index")."""

    media_type: str
    kind: str
    manifests: tuple[Descriptor, ...] = ()  # an index's entries
    config: Descriptor | None = None  # an image's config blob
    layers: tuple[Descriptor, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.kind == "index"

    @property
    def platforms(self) -> list[Platform]:
        return [d.platform for d in self.manifests if d.platform is not None]


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestFormatError(f"{where} is not an object")
    try:
        media_type, digest, size = str(raw.get("mediaType", "")), raw["digest"], raw["size"]
    except KeyError as e:
        raise ManifestFormatError(f"{where} has no {e.args[0]!r}") from None
    if not isinstance(digest, str) or not isinstance(size, int):
        raise ManifestFormatError(f"{where} has a bad digest or size")
    platform = None
    p = raw.get("platform")
    if isinstance(p, dict) and p.get("os") and p.get("architecture"):
        platform = Platform(
            str(p["os"]),
            str(p["architecture"]),
            str(p.get("variant", "")),
            str(p.get("os.version", "")),
        )
    annotations = raw.get("annotations") or {}
    return Descriptor(media_type, digest, size, platform, dict(annotations))


def parse_manifest(body: bytes, media_type: str = "") -> Manifest:
    """A manifest or index from its bytes; the media type from the body wins over the header's."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestFormatError(f"the manifest is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestFormatError("the manifest is not a JSON object")
    kind_type = str(doc.get("mediaType") or media_type or "")
    if doc.get("schemaVersion") == 1:
        raise ManifestFormatError(
            "Docker schema 1 manifests are deprecated and not supported; push the image again"
        )
    if "manifests" in doc or kind_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestFormatError("the index has no manifests list")
        descriptors = tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries))
        return Manifest(kind_type or OCI_INDEX, "index", manifests=descriptors)
    if "config" in doc or kind_type in IMAGE_TYPES:
        layers = doc.get("layers") or []
        if not isinstance(layers, list):
            raise ManifestFormatError("the manifest's layers are not a list")
        return Manifest(
            kind_type or OCI_MANIFEST,
            "image",
            config=_descriptor(doc.get("config"), "config"),
            layers=tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
        )
    raise ManifestFormatError(f"unknown manifest type {kind_type or '(none)'!r}")


def config_platform(body: bytes) -> Platform | None:
    """The platform an image config blob declares."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not doc.get("os") or not doc.get("architecture"):
        return None
    return Platform(
        str(doc["os"]),
        str(doc["architecture"]),
        str(doc.get("variant", "")),
        str(doc.get("os.version", "")),
    )
