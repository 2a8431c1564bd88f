"""The kubelet's image credential provider protocol (KEP-2133), its v1 API.

For an image that matches a provider's `matchImages`, and whose answer it has
not cached, the kubelet runs the provider with a CredentialProviderRequest on
its standard input: `apiVersion`, `kind`, `image` (the repository name the
kubelet looks credentials up for, `docker.io/library/nginx`: no tag, no
digest) and, when the provider is configured for them, a ServiceAccount token
and annotations, which are not used here and never kept.

It reads a CredentialProviderResponse from standard output, decoding strictly
(an unknown or repeated field makes it drop the answer):

- `cacheKeyType`: what the answer is cached for, and so reused for until
  `cacheDuration` passes: the image (`Image`), every image of its registry, the
  part of the image before its first `/` (`Registry`), or every image the
  provider is run for (`Global`);
- `cacheDuration`: a Go duration; 0 is not cached;
- `auth`: a glob -> username and password map. The kubelet reads it as it reads
  a `config.json`'s `auths` (keyring.py): the keys normalized, every key that
  matches the image tried in reverse key order, the `index.docker.io`
  credentials only for a Docker Hub image that matched nothing. An empty map
  leaves the image to the kubelet's other credentials, or to an anonymous pull.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pullkeeper.core.go import duration as goduration
from pullkeeper.core.go import json as gojson
from pullkeeper.core.go import url as gourl
from pullkeeper.core.keyring import (
    DEFAULT_REGISTRY_HOST,
    Keyring,
    byte_order,
    is_default_registry_match,
    matches,
    normalize_key,
)
from pullkeeper.core.reference import InvalidReference, parse_normalized_named

API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
REQUEST_KIND = "CredentialProviderRequest"
RESPONSE_KIND = "CredentialProviderResponse"

_EXPECTED = f"the kubelet writes a {REQUEST_KIND} ({API_VERSION}) on a provider's standard input"


class CacheKeyType(StrEnum):
    """What the kubelet caches an answer for (PluginCacheKeyType)."""

    IMAGE = "Image"
    REGISTRY = "Registry"
    GLOBAL = "Global"


class RequestError(ValueError):
    """A request the kubelet would not send; the message says what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class Request:
    repository: str  # the image's repository name, which credentials are looked up for


@dataclass(frozen=True, slots=True)
class Auth:
    """One entry of a response's auth map: the credentials for images that match glob."""

    glob: str
    username: str
    password: str = field(repr=False)
    source: str = ""  # the keyring source it was found under


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return f"a JSON {gojson.type_name(value)}"


def _check(fields: Mapping[str, Any], name: str, expected: str, remedy: str) -> None:
    value = fields.get(name)
    if value is None:
        raise RequestError(f"the request has no {name}: {_EXPECTED}")
    if value != expected:
        raise RequestError(
            f"the request has {name} {_shown(value)}, not {_shown(expected)}: {remedy}"
        )


def parse_request(data: bytes) -> Request:
    """The request the kubelet wrote; raises RequestError for anything else."""
    try:
        doc = gojson.loads(data)
    except gojson.JSONSyntaxError as e:
        raise RequestError(f"the request is not JSON ({e}): {_EXPECTED}") from None
    if not isinstance(doc, gojson.Members):
        raise RequestError(f"the request is {_shown(doc)}, not an object: {_EXPECTED}")
    fields = dict(doc)
    _check(
        fields,
        "apiVersion",
        API_VERSION,
        f"give the provider apiVersion: {API_VERSION} in the kubelet's CredentialProviderConfig",
    )
    _check(fields, "kind", REQUEST_KIND, _EXPECTED)
    image = fields.get("image")
    if image is None or image == "":
        raise RequestError(f"the request has no image: {_EXPECTED}")
    if not isinstance(image, str):
        raise RequestError(f"the request's image is {_shown(image)}, not a string: {_EXPECTED}")
    try:
        # What the kubelet sends is a repository name already; a tag or digest, which a
        # request written by hand may carry, is dropped as the kubelet drops it.
        repository = parse_normalized_named(image).name
    except InvalidReference as e:
        raise RequestError(
            f"the request's image {_shown(image)} is not a valid image reference: {e}"
        ) from None
    return Request(repository)


def _serves(key: str, repository: str, cache_key_type: CacheKeyType) -> bool:
    """Whether the kubelet could use keyring key for an image it will reuse the answer for."""
    if cache_key_type is CacheKeyType.GLOBAL:
        return True
    if key == DEFAULT_REGISTRY_HOST and is_default_registry_match(repository):
        # The Docker Hub fallback: the kubelet's keyring decides whether it applies.
        return True
    if cache_key_type is CacheKeyType.REGISTRY:
        # Any repository of the registry: the key's host must match, whatever its path.
        return matches(key.partition("/")[0], repository.partition("/")[0])
    return matches(key, repository)


def _glob(key: str, registry: str) -> str:
    """The auth key the kubelet turns back into key: key itself, unless normalizing it again
    would change it (a path that still starts with /v2/, say); then the address as written."""
    try:
        again = normalize_key(key)
    except gourl.URLError:
        again = None
    return key if again == key else registry


def auth_for(keyring: Keyring, repository: str, cache_key_type: CacheKeyType) -> list[Auth]:
    """What to answer for repository from keyring: the entries the kubelet could use for any
    image it will reuse the answer for, so that a cached answer serves those images as the
    keyring itself would.

    The auth map holds one credential per key: each key's first, the one the kubelet would
    try first under that key. The kubelet orders the keys itself.
    """
    auth = []
    for key, credentials in keyring.entries():
        if _serves(key, repository, cache_key_type):
            first = credentials[0]
            glob = _glob(key, first.registry)
            auth.append(Auth(glob, first.username, first.password, first.source))
    return auth


def cache_duration(now: datetime, expires_at: datetime, most: int | None = None) -> int:
    """How long the kubelet may reuse an answer holding a token that expires at expires_at
    (nanoseconds, whole seconds): half its remaining life, so the kubelet asks again well
    before it expires, never past it; at most `most` when given."""
    half = max(expires_at - now, timedelta(0)) // 2
    ns = int(half.total_seconds()) * 1_000_000_000
    return ns if most is None else min(ns, most)


def response(auth: Iterable[Auth], cache_key_type: CacheKeyType, cache_duration: int) -> str:
    """The CredentialProviderResponse as the kubelet's Go types encode it: fields in their
    order, the auth map sorted by key, Go's escaping. cache_duration is in nanoseconds."""
    entries: dict[str, Auth] = {}
    for a in auth:
        if a.glob in entries:
            raise ValueError(f"two credentials for {a.glob!r}: the auth map holds one per glob")
        entries[a.glob] = a
    enc = gojson.encode_string
    auth_json = ",".join(
        f'{enc(glob)}:{{"username":{enc(a.username)},"password":{enc(a.password)}}}'
        for glob, a in sorted(entries.items(), key=lambda item: byte_order(item[0]))
    )
    return (
        f'{{"kind":{enc(RESPONSE_KIND)},"apiVersion":{enc(API_VERSION)},'
        f'"cacheKeyType":{enc(cache_key_type.value)},'
        f'"cacheDuration":{enc(goduration.format(cache_duration))},'
        f'"auth":{{{auth_json}}}}}'
    )
