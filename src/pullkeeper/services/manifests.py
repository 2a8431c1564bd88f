"""Multi-architecture images: inspect an index, build one from images, push it (seed 003).

As with `docker manifest`, a list is built locally (`create`, `annotate`),
kept in the user's config directory until pushed, and pushed as one
document. Its images must live in the list's registry; those in other
repositories are copied into the list's repository first (blobs mounted
across repositories when the registry allows, uploaded otherwise), so the
pushed index never names a manifest its repository lacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from pullkeeper import paths
from pullkeeper.core import oci
from pullkeeper.core.imageindex import Entry, Index
from pullkeeper.core.reference import InvalidReference, Reference, validate_digest
from pullkeeper.registry.auth import Login
from pullkeeper.registry.client import TLS, Registry, api_host
from pullkeeper.registry.errors import Cause, RegistryError
from pullkeeper.services.pull_trial import Candidate, parse_image

__all__ = [
    "Inspected",
    "ManifestInputError",
    "Pushed",
    "RegistryFailure",
    "annotate",
    "create",
    "inspect",
    "list_name",
    "load",
    "local_names",
    "push",
    "remove",
]

_T = TypeVar("_T")
# What these use cases raise when a registry refuses or fails; the face reports its message.
RegistryFailure = RegistryError
_CandidatesFor = Callable[[str], Sequence[Candidate]]
_TLSFor = Callable[[str], TLS]

# Failures of one login, after which the next candidate may do better.
_LOGIN_CAUSES = (Cause.NO_CREDENTIALS, Cause.UNAUTHORIZED, Cause.EXPIRED, Cause.DENIED)


class ManifestInputError(ValueError):
    """A list name, image or request the command cannot act on; the message says why."""


# --------------------------------------------------------------------------- local lists


def _lists_dir() -> Path:
    return paths.config_dir() / "manifests"


def _list_path(name: str) -> Path:
    return _lists_dir() / (quote(name, safe="") + ".json")


def load(name: str) -> Index | None:
    path = _list_path(name)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Index.from_dict(raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ManifestInputError(
            f"the local list {path} is damaged ({e}); remove it with `manifest rm {name}`"
        ) from None


def _require(name: str) -> Index:
    index = load(name)
    if index is None:
        raise ManifestInputError(
            f"there is no local list {name}; create it with `pullkeeper manifest create`"
        )
    return index


def _save(index: Index) -> Path:
    """Write the list atomically (0600 in a 0700 directory): a reader never sees half of it."""
    directory, path = _lists_dir(), _list_path(index.name)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".list-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(index.as_dict(), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove(name: str) -> bool:
    try:
        _list_path(name).unlink()
    except FileNotFoundError:
        return False
    return True


def local_names() -> list[str]:
    if not _lists_dir().is_dir():
        return []
    return sorted(unquote(p.name[: -len(".json")]) for p in _lists_dir().glob("*.json"))


def list_name(text: str) -> Reference:
    """The reference a list is named and pushed as: tagged (default latest), never a digest."""
    ref = parse_image(text)
    if ref.digest:
        raise ManifestInputError(
            f"{text}: a list is pushed under a tag, not a digest; name it repository:tag"
        )
    return Reference(ref.domain, ref.path, ref.tag or "latest")


# --------------------------------------------------------------------------- logins


def _with_login(
    ref: Reference,
    candidates: Sequence[Candidate],
    tls: TLS,
    action: Callable[[Registry], _T],
) -> _T:
    """action with the first login that works, in the kubelet's order (anonymous if none)."""
    tries = list(candidates) or [Candidate("anonymous", ref.domain, Login())]
    failures: list[tuple[Candidate, RegistryError]] = []
    for candidate in tries:
        with Registry(ref.domain, candidate.login, tls) as registry:
            try:
                return action(registry)
            except RegistryError as e:
                if e.cause not in _LOGIN_CAUSES:
                    raise
                failures.append((candidate, e))
    if len(failures) == 1:
        raise failures[0][1]
    said = "; ".join(f"{c.source} ({c.login.username or 'anonymous'}): {e}" for c, e in failures)
    raise RegistryError(failures[-1][1].cause, f"no credential works for {ref.name}: {said}")


# --------------------------------------------------------------------------- inspect


@dataclass
class Inspected:
    reference: str
    digest: str
    media_type: str
    size: int
    raw: bytes
    local: bool = False  # a list created here and not pushed yet
    manifests: list[dict[str, Any]] = field(default_factory=list)  # an index's entries
    platform: str | None = None  # a single image's, from its config blob
    layers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_index(self) -> bool:
        return self.media_type in oci.INDEX_TYPES

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reference": self.reference,
            "local": self.local,
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
        }
        if self.is_index:
            out["manifests"] = self.manifests
        else:
            out["platform"] = self.platform
            out["layers"] = self.layers
        return out


def _entry_dict(d: oci.Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "platform": str(d.platform) if d.platform else None,
        "digest": d.digest,
        "size": d.size,
        "media_type": d.media_type,
    }
    if d.platform is not None and d.platform.os_version:
        out["os_version"] = d.platform.os_version
    if d.annotations:
        out["annotations"] = d.annotations
    return out


def inspect(image: str, candidates: Sequence[Candidate], tls: TLS) -> Inspected:
    """A list created here (not pushed yet) by that name, else what the registry serves."""
    ref = parse_image(image)
    if not ref.digest:
        local = load(str(Reference(ref.domain, ref.path, ref.tag or "latest")))
        if local is not None:
            body = local.render()
            parsed = oci.parse_manifest(body)
            return Inspected(
                reference=local.name,
                digest=oci.sha256_digest(body),
                media_type=local.media_type,
                size=len(body),
                raw=body,
                local=True,
                manifests=[_entry_dict(d) for d in parsed.manifests],
            )
    reference = ref.digest or ref.tag or "latest"

    def fetch(registry: Registry) -> Inspected:
        fetched = registry.get_manifest(ref.path, reference)
        found = Inspected(
            reference=str(ref) if (ref.tag or ref.digest) else f"{ref}:latest",
            digest=fetched.digest,
            media_type=fetched.media_type,
            size=len(fetched.body),
            raw=fetched.body,
        )
        m = fetched.manifest
        if m.is_index:
            found.manifests = [_entry_dict(d) for d in m.manifests]
        else:
            if m.config is not None:
                platform = oci.config_platform(registry.get_blob(ref.path, m.config.digest))
                found.platform = str(platform) if platform else None
            found.layers = [
                {"digest": d.digest, "size": d.size, "media_type": d.media_type} for d in m.layers
            ]
        return found

    return _with_login(ref, candidates, tls, fetch)


# --------------------------------------------------------------------------- create, annotate


def _source(image: str, name: Reference, candidates: Sequence[Candidate], tls: TLS) -> Entry:
    ref = parse_image(image)
    if api_host(ref.domain) != api_host(name.domain):
        raise ManifestInputError(
            f"{image} is in {ref.domain}, the list {name} in {name.domain}: a list can only name "
            "images of its own registry; copy the image there first"
        )
    reference = ref.digest or ref.tag or "latest"

    def fetch(registry: Registry) -> Entry:
        fetched = registry.get_manifest(ref.path, reference)
        if fetched.manifest.is_index:
            listed = ", ".join(
                f"{d.platform or '?'} {d.digest}" for d in fetched.manifest.manifests
            )
            raise ManifestInputError(
                f"{image} is itself a manifest list; add its images by digest instead "
                f"({ref.name}@DIGEST): {listed}"
            )
        config = fetched.manifest.config
        blob = registry.get_blob(ref.path, config.digest) if config else b""
        platform = oci.config_platform(blob)
        if platform is None:
            raise ManifestInputError(
                f"the config of {image} names no os and architecture; "
                "add it, then set them with `manifest annotate`"
            )
        return Entry(
            image=str(ref),
            repository=ref.path,
            media_type=fetched.media_type,
            digest=fetched.digest,
            size=len(fetched.body),
            platform=platform,
            os_features=_os_features(blob),
        )

    return _with_login(ref, candidates, tls, fetch)


def _os_features(config: bytes) -> tuple[str, ...]:
    try:
        features = json.loads(config).get("os.features") or ()
    except (ValueError, AttributeError):
        return ()
    return tuple(str(f) for f in features) if isinstance(features, list) else ()


def create(
    name: str,
    images: Sequence[str],
    candidates_for: _CandidatesFor,
    tls_for: _TLSFor,
    *,
    amend: bool = False,
    format: str = "auto",
) -> Index:
    """A local list of images (fetched to learn their digests and platforms), saved."""
    ref = list_name(name)
    existing = load(str(ref))
    if existing is not None and not amend:
        raise ManifestInputError(
            f"a local list {ref} exists already; add to it with --amend, "
            f"or remove it with `pullkeeper manifest rm {ref}`"
        )
    tls = tls_for(api_host(ref.domain))
    entries = [_source(image, ref, candidates_for(image), tls) for image in images]
    base = existing or Index(str(ref))
    index = base.with_entries(entries)
    if format != "auto" or existing is None:
        index = Index(index.name, index.entries, format)
    index.render()  # refuses what could not be pushed before anything is saved
    _save(index)
    return index


def _entry_key(image: str) -> str:
    """A bare digest as it is (`sha256:...` also parses as an image named sha256), else the
    normalized reference."""
    try:
        validate_digest(image)
        return image
    except InvalidReference:
        return str(parse_image(image))


def annotate(
    name: str,
    image: str,
    *,
    os_name: str | None = None,
    arch: str | None = None,
    variant: str | None = None,
    os_version: str | None = None,
    os_features: Sequence[str] | None = None,
) -> Index:
    index = _require(str(list_name(name)))
    entry = index.find(_entry_key(image))
    current = entry.platform
    platform = oci.Platform(
        os_name if os_name is not None else current.os,
        arch if arch is not None else current.architecture,
        variant if variant is not None else current.variant,
        os_version if os_version is not None else current.os_version,
    )
    features = tuple(os_features) if os_features is not None else entry.os_features
    annotated = index.annotated(entry.digest, platform, features)
    _save(annotated)
    return annotated


# --------------------------------------------------------------------------- push


@dataclass
class Pushed:
    name: str
    digest: str
    media_type: str
    size: int
    copied: list[str] = field(default_factory=list)  # images copied into the list's repository

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
            "copied": self.copied,
        }


def _copy_into(registry: Registry, entry: Entry, repository: str) -> bool:
    """Make entry's manifest (and its blobs) exist in repository; whether anything was copied."""
    try:
        registry.head_manifest(repository, entry.digest)
        return False
    except RegistryError as e:
        if e.cause != Cause.NOT_FOUND:
            raise
    fetched = registry.get_manifest(entry.repository, entry.digest)
    m = fetched.manifest
    blobs = ([m.config.digest] if m.config else []) + [d.digest for d in m.layers]
    for digest in dict.fromkeys(blobs):
        if registry.blob_exists(repository, digest):
            continue
        if not registry.mount_blob(repository, digest, entry.repository):
            registry.put_blob(repository, digest, registry.get_blob(entry.repository, digest))
    registry.put_manifest(repository, entry.digest, fetched.media_type, fetched.body)
    return True


def push(
    name: str, candidates_for: _CandidatesFor, tls_for: _TLSFor, *, purge: bool = False
) -> Pushed:
    """Push the local list; it is kept (for another push) unless purge."""
    ref = list_name(name)
    index = _require(str(ref))
    body = index.render()

    def upload(registry: Registry) -> Pushed:
        copied = []
        for entry in index.entries:
            if entry.repository != ref.path and _copy_into(registry, entry, ref.path):
                copied.append(entry.image)
        digest = registry.put_manifest(ref.path, ref.tag or "latest", index.media_type, body)
        return Pushed(str(ref), digest, index.media_type, len(body), copied)

    pushed = _with_login(ref, candidates_for(str(ref)), tls_for(api_host(ref.domain)), upload)
    if purge:
        remove(str(ref))
    return pushed
