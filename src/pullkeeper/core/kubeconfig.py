"""What a kubeconfig offers: its contexts, each naming a cluster and a user the file has.

The shape is client-go's `clientcmd` v1 Config (kind Config; `clusters`, `users` and
`contexts` as lists of `{name, cluster|user|context}`; `current-context`). Only the names
are read: a message never quotes a server address, token, key or the file's lines, because
they may hold secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Contexts", "KubeconfigError", "contexts_of", "files_named"]


class KubeconfigError(ValueError):
    """The file is no usable kubeconfig; the message says what is wrong, in words."""


@dataclass(frozen=True, slots=True)
class Contexts:
    names: tuple[str, ...]  # in the file's order
    current: str  # current-context, else the first context


def _named(doc: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    entries = doc.get(key) or []
    if not isinstance(entries, list):
        raise KubeconfigError(f"its {key!r} is not a list")
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(f"an entry of its {key!r} has no name")
        body = entry.get(key.removesuffix("s"))
        found[entry["name"]] = body if isinstance(body, dict) else {}
    return found


def _load(text: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or "it cannot be read"
        raise KubeconfigError(f"the file is not YAML: {problem}{where}") from None
    except (ValueError, RecursionError):  # a value YAML cannot hold (a 30th of February)
        raise KubeconfigError("the file is not YAML a kubeconfig can be read from") from None
    if doc is None:
        raise KubeconfigError("the file is empty")
    if not isinstance(doc, dict):
        raise KubeconfigError(
            "the file is YAML but not a kubeconfig (no clusters, users, contexts)"
        )
    if doc.get("kind", "Config") != "Config":
        raise KubeconfigError(f"the file is a {doc['kind']!s:.40}, not a kubeconfig (kind Config)")
    return doc


def contexts_of(text: str) -> Contexts:
    """The contexts of a kubeconfig, each checked to name a cluster (with a server) and a
    user of the file; a KubeconfigError says what is missing."""
    doc = _load(text)
    clusters, users = _named(doc, "clusters"), _named(doc, "users")
    contexts = _named(doc, "contexts")
    if not contexts:
        raise KubeconfigError("the kubeconfig has no contexts; it needs at least one")
    for name, context in contexts.items():
        cluster, user = context.get("cluster"), context.get("user")
        if not isinstance(cluster, str) or not isinstance(user, str):
            cluster, user = (v if isinstance(v, str) else "" for v in (cluster, user))
        if not cluster:
            raise KubeconfigError(f"context {name!r} names no cluster")
        if cluster not in clusters:
            raise KubeconfigError(
                f"context {name!r} names cluster {cluster!r}, which the file lacks"
            )
        if not clusters[cluster].get("server"):
            raise KubeconfigError(f"cluster {cluster!r} of the file has no server address")
        if not user:
            raise KubeconfigError(f"context {name!r} names no user")
        if user not in users:
            raise KubeconfigError(f"context {name!r} names user {user!r}, which the file lacks")
    current = doc.get("current-context") or ""
    if not isinstance(current, str):
        raise KubeconfigError("its current-context is not a context's name")
    if current and current not in contexts:
        raise KubeconfigError(
            f"its current-context {current!r} is not one of its contexts ({', '.join(contexts)})"
        )
    return Contexts(tuple(contexts), current or next(iter(contexts)))


# Fields that name a file instead of carrying its contents (client-go's clientcmd v1).
_FILE_FIELDS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def files_named(text: str, context: str) -> list[str]:
    """The fields of the context's cluster and user that name a file on the machine the
    kubeconfig was written on (the text is a valid kubeconfig with this context)."""
    doc = _load(text)
    ctx = _named(doc, "contexts")[context]
    found = []
    for key in ("cluster", "user"):
        body = _named(doc, f"{key}s").get(ctx.get(key) or "", {})
        found += [field for field in _FILE_FIELDS[key] if body.get(field)]
    return found
