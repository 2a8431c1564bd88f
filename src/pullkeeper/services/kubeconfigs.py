"""Kubeconfigs uploaded for clusters: kept on the server as DATA/kubeconfigs/<cluster id>.yaml
(owner-only, written whole or not at all), the cluster's record pointing at the file.

A cluster may instead name a kubeconfig path of its own (the API's and CLI's `kubeconfig`
field); such a file is the admin's and is never removed here. The file's contents never
leave this module but as context names.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.kubeconfig import Contexts, KubeconfigError, contexts_of, files_named
from pullkeeper.files import write_atomic
from pullkeeper.services import clusters
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, Invalid
from pullkeeper.services.server import Server
from pullkeeper.store.models import Cluster

__all__ = [
    "LIMIT",
    "checked",
    "contexts",
    "create",
    "forget",
    "replace",
    "stored",
]

LIMIT = 256 * 1024  # bytes: a kubeconfig with a few embedded certificates is far smaller


def _directory(server: Server) -> Path:
    return (server.settings.data / "kubeconfigs").resolve()


def _path(server: Server, cluster_id: str) -> Path:
    return _directory(server) / f"{cluster_id}.yaml"


def stored(server: Server, cluster: Cluster) -> bool:
    """Whether the cluster's kubeconfig is one uploaded to the server (its file is ours)."""
    return bool(cluster.kubeconfig) and Path(cluster.kubeconfig) == _path(server, cluster.id)


def checked(text: str, context: str) -> tuple[Contexts, str]:
    """The file's contexts and the one to use (the given one, else current-context); an
    Invalid at `kubeconfig` or `context` says what is wrong."""
    if not text.strip():
        raise Invalid("choose a kubeconfig file or paste one", "kubeconfig")
    if len(text.encode()) > LIMIT:
        raise Invalid(
            f"the kubeconfig is over {LIMIT // 1024} KiB; is it the right file?", "kubeconfig"
        )
    try:
        found = contexts_of(text)
    except KubeconfigError as e:
        raise Invalid(f"not a usable kubeconfig: {e}", "kubeconfig") from None
    if context and context not in found.names:
        raise Invalid(
            f"the kubeconfig has no context {context!r}; it has {', '.join(found.names)}",
            "context",
        )
    context = context or found.current
    if named := files_named(text, context):
        raise Invalid(
            f"context {context!r} names files of the machine it was written on "
            f"({', '.join(named)}), which the server does not have; upload a kubeconfig that "
            "carries them inside, such as the output of `kubectl config view --flatten --minify`",
            "kubeconfig",
        )
    return found, context


def _write(server: Server, cluster_id: str, text: str) -> str:
    directory = _directory(server)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _path(server, cluster_id)
    write_atomic(path, text.encode())
    return str(path)


def create(
    server: Server,
    session: Session,
    actor: Actor,
    name: str,
    text: str,
    *,
    context: str = "",
    description: str = "",
) -> Cluster:
    """Register a cluster reached with this kubeconfig, kept as the server's file. In the
    caller's transaction: if it does not commit, call forget()."""
    if not actor.is_admin:
        raise Forbidden("only an admin can register clusters")
    _, context = checked(text, context)
    cluster_id = uuid.uuid4().hex
    path = str(_path(server, cluster_id))
    cluster = clusters.create_cluster(
        session,
        actor,
        name,
        description=description,
        access="kubeconfig",
        kubeconfig=path,
        context=context,
        cluster_id=cluster_id,
    )
    _write(server, cluster_id, text)
    return cluster


def replace(
    server: Server,
    session: Session,
    actor: Actor,
    cluster: Cluster,
    text: str,
    *,
    context: str = "",
    changes: dict[str, Any] | None = None,
    if_match: IfMatch | None = None,
) -> Cluster:
    """Reach the cluster with this kubeconfig from now on (with other `changes`): the
    server's file for it is replaced whole."""
    if not actor.is_admin:
        raise Forbidden("only an admin can change clusters")
    _, context = checked(text, context)
    every = {
        **(changes or {}),
        "access": "kubeconfig",
        "kubeconfig": str(_path(server, cluster.id)),
        "context": context,
    }
    cluster = clusters.update_cluster(session, actor, cluster, every, if_match=if_match)
    _write(server, cluster.id, text)
    return cluster


def forget(server: Server, cluster_id: str) -> None:
    """Remove the server's kubeconfig file of a cluster (deleted, or no longer using it)."""
    _path(server, cluster_id).unlink(missing_ok=True)


def contexts(server: Server, cluster: Cluster) -> Contexts | None:
    """The contexts of the cluster's kubeconfig file, None when it has none or it is not
    readable (the cluster's sync state says why)."""
    if cluster.access != "kubeconfig" or not cluster.kubeconfig:
        return None
    try:
        with open(os.path.expanduser(cluster.kubeconfig), encoding="utf-8") as f:
            return contexts_of(f.read(LIMIT + 1))
    except (OSError, UnicodeDecodeError, KubeconfigError):
        return None
