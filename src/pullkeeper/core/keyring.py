"""The kubelet's credential keyring (pkg/credentialprovider/keyring.go), indexed.

The kubelet merges a pod's imagePullSecrets into one keyring and looks an
image's repository name up in it:

- a key is the registry address with its scheme and a leading `/v1/` or
  `/v2/` removed; the port is kept and nothing is lowercased;
- a key matches when its port equals the image's, its host has as many DNS
  labels as the image's and each label matches as a filepath.Match glob, and
  its path is a string prefix of the image's path;
- every matching key counts, in reverse byte order of the keys (so longer,
  more specific keys come first), each key's credentials in the order added;
- only when nothing matched and the image is on Docker Hub are the
  credentials stored under `index.docker.io` used.

The kubelet scans every key per lookup. Here keys are indexed by port, label
count and a literal label, so a lookup touches only keys that can match; the
answer, order included, is the scan's.

A LayeredKeyring looks several keyrings up as the one keyring that adds their
files in turn, so keyrings shared by many namespaces (a project's, a cluster's)
are built once.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.go import glob
from pullkeeper.core.go import url as gourl

DEFAULT_REGISTRY_HOST = "index.docker.io"


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential the kubelet would try, and where it came from."""

    registry: str
    username: str
    password: str = field(repr=False)
    email: str
    source: str


@dataclass(frozen=True, slots=True)
class _Target:
    labels: tuple[str, ...]
    host: str
    port: str
    path: str


def _split(u: gourl.URL) -> tuple[tuple[str, ...], str, str]:
    try:
        host, port = gourl.split_host_port(u.host)
    except ValueError:
        host, port = u.host, ""
    return tuple(host.split(".")), host, port


def _schemeless(s: str) -> _Target | None:
    """parseSchemelessURL + splitURL; None where url.Parse fails."""
    try:
        u = gourl.parse("https://" + s)
    except gourl.URLError:
        return None
    labels, host, port = _split(u)
    return _Target(labels, host, port, u.path)


def normalize_key(registry: str) -> str:
    """The keyring key for a registry address; raises gourl.URLError as the kubelet skips it."""
    value = registry
    if not value.startswith(("https://", "http://")):
        value = "https://" + value
    u = gourl.parse(value)
    path = u.path
    if path.startswith(("/v2/", "/v1/")):
        path = path[3:]
    return u.host + path if path and path != "/" else u.host


def is_default_registry_match(image: str) -> bool:
    """Whether the kubelet would treat image as a Docker Hub image.

    Unlike distribution, the kubelet has no exception for "localhost".
    """
    first, slash, _ = image.partition("/")
    if not first:
        return False
    if not slash or first in ("docker.io", DEFAULT_REGISTRY_HOST):
        return True
    return not ("." in first or ":" in first)


def _labels_match(patterns: Sequence[str], labels: Sequence[str]) -> bool:
    try:
        return all(glob.match(p, label) for p, label in zip(patterns, labels, strict=True))
    except glob.BadPattern:
        return False


def _covers(pattern: _Target, target: _Target) -> bool:
    """urlsMatch: the same port, as many labels each matching as a glob, the path a prefix."""
    return (
        pattern.port == target.port
        and len(pattern.labels) == len(target.labels)
        and target.path.startswith(pattern.path)
        and _labels_match(pattern.labels, target.labels)
    )


def matches(key: str, image: str) -> bool:
    """URLsMatchStr(key, image): whether the kubelet matches image (a repository name) against
    key, a keyring key or a CredentialProviderConfig's matchImages entry."""
    pattern, target = _schemeless(key), _schemeless(image)
    return pattern is not None and target is not None and _covers(pattern, target)


@dataclass(slots=True)
class _Glob:
    key: str
    target: _Target


class Keyring:
    """A BasicDockerKeyring: add credential files in order, then look images up."""

    def __init__(self) -> None:
        self._creds: dict[str, list[Credential]] = {}
        # (port, host) -> path -> keys, and the path lengths present, for literal
        # hosts. Distinct keys can share a path once re-parsed ("a%23b" and "a").
        self._literal: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._literal_lengths: dict[tuple[str, str], list[int]] = {}
        # (port, label count, position, literal label) -> glob keys filed there.
        self._globs: dict[tuple[str, int, int, str], list[_Glob]] = {}
        # (port, label count) -> glob keys with no literal label at all.
        self._wild: dict[tuple[str, int], list[_Glob]] = {}

    def __len__(self) -> int:
        return sum(len(c) for c in self._creds.values())

    def add(self, auths: Iterable[tuple[str, AuthEntry]], source: str) -> list[tuple[str, str]]:
        """Add one credential file's entries; returns (registry, reason) for those skipped."""
        skipped = []
        for registry, entry in auths:
            try:
                key = normalize_key(registry)
            except gourl.URLError as e:
                skipped.append((registry, str(e)))
                continue
            cred = Credential(registry, entry.username, entry.password, entry.email, source)
            known = self._creds.get(key)
            if known is None:
                self._creds[key] = [cred]
                self._index(key)
            else:
                known.append(cred)
        return skipped

    def entries(self) -> Iterator[tuple[str, tuple[Credential, ...]]]:
        """Each key with its credentials in the order added, keys in the order first added."""
        for key, creds in self._creds.items():
            yield key, tuple(creds)

    def _index(self, key: str) -> None:
        # Lookup re-parses each key as a URL, as the kubelet does; a key that
        # does not parse again can never match, though it still serves the
        # Docker Hub fallback.
        target = _schemeless(key)
        if target is None:
            return
        port, n = target.port, len(target.labels)
        if not any(glob.has_meta(label) for label in target.labels):
            bucket = (port, target.host)
            self._literal.setdefault(bucket, {}).setdefault(target.path, []).append(key)
            lengths = self._literal_lengths.setdefault(bucket, [])
            if len(target.path) not in lengths:
                insort(lengths, len(target.path))
            return
        g = _Glob(key, target)
        # The leftmost literal label is the most selective one ("region-7" in
        # "*.region-7.example.com"); the rightmost is usually a shared TLD.
        for i in range(n):
            if not glob.has_meta(target.labels[i]):
                self._globs.setdefault((port, n, i, target.labels[i]), []).append(g)
                return
        self._wild.setdefault((port, n), []).append(g)

    def _matching_keys(self, image: str) -> list[str]:
        target = _schemeless(image)
        if target is None:
            return []
        port, n, path = target.port, len(target.labels), target.path
        keys: list[str] = []
        bucket = (port, target.host)
        paths = self._literal.get(bucket)
        if paths is not None:
            for length in self._literal_lengths[bucket]:
                if length > len(path):
                    break
                keys.extend(paths.get(path[:length], ()))
        candidates: list[_Glob] = list(self._wild.get((port, n), ()))
        for i, label in enumerate(target.labels):
            candidates.extend(self._globs.get((port, n, i, label), ()))
        keys.extend(g.key for g in candidates if _covers(g.target, target))
        return keys

    def lookup(self, image: str) -> list[Credential]:
        """The credentials the kubelet would try for image (a repository name), in order."""
        keys = self._matching_keys(image)
        if keys:
            keys.sort(key=byte_order, reverse=True)
            return [cred for key in keys for cred in self._creds[key]]
        if is_default_registry_match(image):
            return list(self._creds.get(DEFAULT_REGISTRY_HOST, ()))
        return []


def byte_order(key: str) -> bytes:
    """A keyring key as the kubelet compares keys: sorted by this, reversed, is its order."""
    return key.encode("utf-8", "surrogateescape")


class LayeredKeyring:
    """Keyrings looked up as the one Keyring that adds each layer's files in turn."""

    __slots__ = ("layers",)

    def __init__(self, layers: Sequence[Keyring]) -> None:
        self.layers = tuple(layers)

    def __len__(self) -> int:
        return sum(len(layer) for layer in self.layers)

    def lookup(self, image: str) -> list[Credential]:
        """What Keyring.lookup answers for the layers' files added to one keyring in order:
        a key's credentials from every layer under that key, earlier layers first."""
        matched: dict[str, list[Credential]] = {}
        for layer in self.layers:
            for key in layer._matching_keys(image):
                matched.setdefault(key, []).extend(layer._creds[key])
        if matched:
            return [
                c for key in sorted(matched, key=byte_order, reverse=True) for c in matched[key]
            ]
        if is_default_registry_match(image):
            return [c for layer in self.layers for c in layer._creds.get(DEFAULT_REGISTRY_HOST, ())]
        return []


def lookup_union(keyrings: Iterable[Keyring], image: str) -> list[Credential]:
    """UnionDockerKeyring: the pod's keyring first, then the node's."""
    return [cred for keyring in keyrings for cred in keyring.lookup(image)]
