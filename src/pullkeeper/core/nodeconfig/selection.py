"""Which of a cluster's node profiles a node gets (label selectors, the most specific
wins), and the Docker Hub mirror a policy's default registry makes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from pullkeeper.core.names import InvalidName, validate_labels
from pullkeeper.core.nodeconfig.profile import Mirror, ProfileError

__all__ = ["check_selector", "chosen", "default_registry_mirror", "labels_from", "matches"]

_T = TypeVar("_T")


def _valid(key: str, value: str) -> bool:
    """Kubernetes' own label rules (core.names); the messages below say them in words."""
    try:
        validate_labels({key: value})
    except InvalidName:
        return False
    return True


def _check_key(key: str, where: str) -> None:
    if _valid(key, ""):
        return
    prefix, slash, _ = key.rpartition("/")
    if slash and not _valid(prefix + "/a", ""):
        raise ProfileError(where, f"{key!r}: the prefix before / must be a DNS subdomain")
    raise ProfileError(
        where,
        f"{key!r} is not a label key: [prefix/]name, the name up to 63 letters, digits, "
        "'-', '_' or '.', starting and ending with a letter or digit",
    )


def check_selector(selector: object, where: str = "node_selector") -> dict[str, str]:
    """A node selector (label key -> value, all to match) as given, or ProfileError."""
    if not isinstance(selector, Mapping):
        raise ProfileError(where, "is a mapping of label keys to values")
    out: dict[str, str] = {}
    for key, value in selector.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ProfileError(f"{where}.{key}", "keys and values are strings")
        _check_key(key, f"{where}.{key}")
        if not _valid(key, value):
            raise ProfileError(
                f"{where}.{key}",
                f"{value!r} is not a label value (up to 63 letters, digits, "
                "'-', '_' or '.', starting and ending with a letter or digit)",
            )
        out[key] = value
    return dict(sorted(out.items()))


def labels_from(items: Iterable[str], where: str = "labels") -> dict[str, str]:
    """KEY=VALUE items (a comma may join several) as a label set, or ProfileError."""
    pairs: dict[str, str] = {}
    for item in (p.strip() for i in items for p in i.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq:
            raise ProfileError(where, f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return check_selector(pairs, where)


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a node with these labels is selected: it has every label the selector names,
    with the same value (an empty selector selects every node)."""
    return all(labels.get(k) == v for k, v in selector.items())


def chosen(
    profiles: Iterable[tuple[str, Mapping[str, str], _T]], labels: Mapping[str, str]
) -> _T | None:
    """Of (name, selector, profile) triples, the profile a node with `labels` gets: among
    those selecting it, the one whose selector names the most labels, then the first by
    name. None when none selects it."""
    found = [(-len(s), n, p) for n, s, p in profiles if matches(s, labels)]
    if not found:
        return None
    return min(found, key=lambda t: (t[0], t[1]))[2]


def default_registry_mirror(default_registry: str, *, plain_http: bool = False) -> Mirror:
    """The mirror of docker.io a policy's default registry (host[:port][/prefix]) stands
    for: an image it rewrites to HOST/PREFIX/library/nginx is asked for, through the mirror,
    at HOST's /v2/PREFIX/library/nginx, so a prefix becomes the mirror's path in place of
    /v2 (override_path)."""
    host, _, prefix = default_registry.partition("/")
    scheme = "http" if plain_http else "https"
    if not prefix:
        return Mirror(f"{scheme}://{host}")
    return Mirror(f"{scheme}://{host}/v2/{prefix.strip('/')}", override_path=True)
