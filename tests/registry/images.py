"""Test images as OCI image layouts (standard library only), and what a registry says they are.

`build_oci_layout` from the integration suite makes the single-platform `team-a/app:v1`;
this module adds single images with distinct content (so two repositories never share a
digest by accident) and a two-platform OCI index. Digests are never taken from what is built
here: `inspect_image` asks the registry through skopeo.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.conftest import run

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
LIST_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True, kw_only=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        # containerd's notation, used as the key of PushedImage.platform_digests.
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    def as_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


AMD64 = Platform(os="linux", architecture="amd64")
ARM64_V8 = Platform(os="linux", architecture="arm64", variant="v8")


@dataclass(frozen=True, kw_only=True)
class PushedImage:
    """One tag in a registry, as the registry serves it (via `skopeo inspect [--raw]`)."""

    repository: str  # "team-a/app"
    tag: str  # "v1"
    reference: str  # "127.0.0.1:PORT/team-a/app:v1", for docker://
    digest: str  # sha256 of the raw top-level manifest (the index's for a list)
    media_type: str  # of the top-level manifest
    raw_manifest: bytes  # exactly the bytes the registry served
    # "linux/amd64" / "linux/arm64/v8" -> that platform's manifest digest. For a list these
    # come from the list the registry served; a single image maps its one platform to `digest`.
    platform_digests: Mapping[str, str]

    @property
    def is_list(self) -> bool:
        return self.media_type in LIST_MEDIA_TYPES

    @property
    def name(self) -> str:
        """repository:tag, the key of a registry fixture's `images`."""
        return f"{self.repository}:{self.tag}"

    @property
    def by_digest(self) -> str:
        """host/repository@digest, for docker://."""
        return f"{self.reference.rsplit(':', 1)[0]}@{self.digest}"


class _Blobs:
    def __init__(self, directory: Path) -> None:
        self.dir = directory / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.dir / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data), **extra}


def _image(blobs: _Blobs, platform: Platform, content: bytes) -> dict[str, Any]:
    """One single-layer image manifest; returns its descriptor."""
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    layer_tar = tar_buffer.getvalue()
    layer_gz = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            **platform.as_json(),
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blobs.put(config, OCI_CONFIG),
            "layers": [blobs.put(layer_gz, OCI_LAYER)],
        }
    ).encode()
    return blobs.put(manifest, OCI_MANIFEST)


def _write_layout(directory: Path, descriptor: dict[str, Any], tag: str) -> None:
    top = {**descriptor, "annotations": {REF_NAME: tag}}
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


def build_single_layout(directory: Path, tag: str, content: bytes) -> None:
    """A linux/amd64 one-layer image whose layer holds `content`."""
    blobs = _Blobs(directory)
    _write_layout(directory, _image(blobs, AMD64, content), tag)


def build_multi_platform_layout(
    directory: Path, tag: str, platforms: Sequence[Platform] = (AMD64, ARM64_V8)
) -> None:
    """An OCI image index with one image per platform (push it with `skopeo copy --all`)."""
    blobs = _Blobs(directory)
    entries = [
        {**_image(blobs, p, f"hello from {p}\n".encode()), "platform": p.as_json()}
        for p in platforms
    ]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    _write_layout(directory, blobs.put(index, OCI_INDEX), tag)


def _platform_key(platform: Mapping[str, Any]) -> str:
    return str(
        Platform(
            os=platform["os"],
            architecture=platform["architecture"],
            variant=platform.get("variant") or None,
        )
    )


def inspect_image(
    reference: str,
    *,
    env: Mapping[str, str],
    skopeo_args: Sequence[str],
) -> PushedImage:
    """What the registry serves for host/repository:tag, asked with skopeo.

    `skopeo inspect --raw` gives the bytes (their sha256 is the digest; a list names its
    platforms' digests); `skopeo inspect` must report the same digest.
    """
    raw = run(["skopeo", "inspect", "--raw", *skopeo_args, f"docker://{reference}"], env=env)
    assert raw.returncode == 0, raw.describe()
    cooked = run(["skopeo", "inspect", *skopeo_args, f"docker://{reference}"], env=env)
    assert cooked.returncode == 0, cooked.describe()
    digest = "sha256:" + hashlib.sha256(raw.out).hexdigest()
    assert cooked.json()["Digest"] == digest, (digest, cooked.describe())
    manifest = json.loads(raw.out)
    media_type: str = manifest["mediaType"]
    if media_type in LIST_MEDIA_TYPES:
        platforms = {_platform_key(m["platform"]): m["digest"] for m in manifest["manifests"]}
    else:
        info = cooked.json()
        platform = {"os": info["Os"], "architecture": info["Architecture"]}
        if info.get("Variant"):
            platform["variant"] = info["Variant"]
        platforms = {_platform_key(platform): digest}
    host_repo, tag = reference.rsplit(":", 1)
    return PushedImage(
        repository=host_repo.split("/", 1)[1],
        tag=tag,
        reference=reference,
        digest=digest,
        media_type=media_type,
        raw_manifest=raw.out,
        platform_digests=platforms,
    )
