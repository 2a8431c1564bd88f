"""What a kubeconfig offers: its contexts, each naming a cluster and a user the file has.

The shape is client-go's `clientcmd` v1 Config (kind Config; `clusters`, `users` and
`contexts` as lists of `{name, cluster|user|context}`; `current-context`). Only the names
are read: a message never quotes a server address, token, key or the file's lines, because
they may hold secrets.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Contexts", "KubeconfigError", "contexts_of", "minified", "refused"]


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


# What pullkeeper refuses in an uploaded kubeconfig, anywhere in it (client-go's clientcmd v1
# names): fields naming a file of the machine it was written on, which the server does not
# have (and must not read); commands the client would run inside the server (`exec`) or
# plug-ins it would call (`auth-provider`); and `proxy-url`, which lightkube ignores, so the
# server would connect directly, not through the proxy the file names.
_REFUSED = {
    "cluster": ("certificate-authority", "proxy-url"),
    "user": ("client-certificate", "client-key", "tokenFile", "exec", "auth-provider"),
}
_WHY = {
    "certificate-authority": "names a file",
    "client-certificate": "names a file",
    "client-key": "names a file",
    "tokenFile": "names a file",
    "exec": "runs a command",
    "auth-provider": "calls an auth plug-in",
    "proxy-url": "names a proxy, which pullkeeper does not use",
}
# Base64 of PEM data, as `kubectl config view --flatten` writes them.
_PEM_FIELDS = {
    "cluster": ("certificate-authority-data",),
    "user": ("client-certificate-data", "client-key-data"),
}


def refused(text: str) -> list[str]:
    """What a server must not use in the kubeconfig, of every cluster and user of the file
    (not only the chosen context's), each in words naming the entry and the field."""
    doc = _load(text)
    found = []
    for key in ("cluster", "user"):
        for name, body in _named(doc, f"{key}s").items():
            found += [
                f"{key} {name!r} has {field} ({_WHY[field]})"
                for field in _REFUSED[key]
                if body.get(field)
            ]
            for field in _PEM_FIELDS[key]:
                value = body.get(field)
                if value and not _is_pem(value):
                    found.append(f"{key} {name!r} has a {field} that is not base64 of PEM data")
    return found


def _is_pem(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b"-----BEGIN " in data


def minified(text: str, context: str) -> dict[str, Any]:
    """The kubeconfig reduced to one context, its cluster and its user (as `kubectl config
    view --minify`), that context current: what the server keeps of an upload, so no other
    user of the file is ever within reach. The text is a valid kubeconfig with this context."""
    doc = _load(text)
    ctx = _named(doc, "contexts")[context]
    cluster, user = ctx["cluster"], ctx["user"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": _named(doc, "clusters")[cluster]}],
        "users": [{"name": user, "user": _named(doc, "users")[user]}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }
