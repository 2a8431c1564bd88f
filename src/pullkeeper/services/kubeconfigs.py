"""Kubeconfigs uploaded for clusters: kept in the store, encrypted as credentials' passwords
are (one transaction with the cluster's record, readable by every server on the store), and
reduced to the one context chosen, its cluster and its user.

A cluster may instead name a kubeconfig path of its own (the API's and CLI's `kubeconfig`
field), a file of the admin's on the server's machine. Either way, a change of context goes
through update() here, which checks it. The kubeconfig's contents never leave this module but
as context names, and as the decrypted Access the cluster is reached with.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from sqlalchemy.orm import Session

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.kubeconfig import (
    Contexts,
    KubeconfigError,
    contexts_of,
    minified,
    refused,
)
from pullkeeper.kube.api import Access, KubeError
from pullkeeper.services import clusters
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, Invalid
from pullkeeper.services.keys import kubeconfig_bound
from pullkeeper.services.server import Server
from pullkeeper.store.models import Cluster
from pullkeeper.store.vault import Vault, VaultError

__all__ = [
    "LIMIT",
    "access_of",
    "checked",
    "contexts",
    "create",
    "replace",
    "stored",
    "update",
]

LIMIT = 256 * 1024  # bytes: a kubeconfig with a few embedded certificates is far smaller


def stored(cluster: Cluster) -> bool:
    """Whether the cluster is reached with a kubeconfig uploaded to the server (in the store)."""
    return cluster.kubeconfig_blob is not None


def checked(text: str, context: str) -> tuple[Contexts, dict[str, Any]]:
    """The file's contexts and what the server keeps of it (the given context, else its
    current-context, minified); an Invalid at `kubeconfig` or `context` says what is wrong."""
    if not text.strip():
        raise Invalid("choose a kubeconfig file or paste one", "kubeconfig")
    if len(text.encode()) > LIMIT:
        raise Invalid(
            f"the kubeconfig is over {LIMIT // 1024} KiB; is it the right file?", "kubeconfig"
        )
    try:
        found = contexts_of(text)
        problems = refused(text)
    except KubeconfigError as e:
        raise Invalid(f"not a usable kubeconfig: {e}", "kubeconfig") from None
    if problems:
        raise Invalid(
            f"the kubeconfig cannot be used by the server: {'; '.join(problems)}. Upload one "
            "that carries its certificates and a token inside and runs nothing, such as the "
            "output of `kubectl config view --flatten --minify` for a service account's token",
            "kubeconfig",
        )
    if context and context not in found.names:
        raise Invalid(
            f"the kubeconfig has no context {context!r}; it has {', '.join(found.names)}",
            "context",
        )
    return found, minified(text, context or found.current)


def _seal(
    vault: Vault, session: Session, cluster_id: str, config: dict[str, Any]
) -> dict[str, Any]:
    key_id, blob = vault.encrypt(session, json.dumps(config), kubeconfig_bound(cluster_id))
    return {"kubeconfig_key_id": key_id, "kubeconfig_blob": blob}


_UNSEALED: dict[str, Any] = {"kubeconfig_key_id": None, "kubeconfig_blob": None}


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
    """Register a cluster reached with this kubeconfig, kept encrypted in the store."""
    if not actor.is_admin:
        raise Forbidden("only an admin can register clusters")
    _, config = checked(text, context)
    cluster_id = uuid.uuid4().hex
    return clusters.create_cluster(
        session,
        actor,
        name,
        description=description,
        access="kubeconfig",
        context=config["current-context"],
        cluster_id=cluster_id,
        sealed=_seal(server.vault, session, cluster_id, config),
    )


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
    """Reach the cluster with this kubeconfig from now on (with other `changes`), replacing
    whatever access it had."""
    if not actor.is_admin:
        raise Forbidden("only an admin can change clusters")
    _, config = checked(text, context)
    every = {
        **(changes or {}),
        "access": "kubeconfig",
        "kubeconfig": "",
        "context": config["current-context"],
        **_seal(server.vault, session, cluster.id, config),
    }
    return clusters.update_cluster(session, actor, cluster, every, if_match=if_match)


def update(
    session: Session,
    actor: Actor,
    cluster: Cluster,
    changes: dict[str, Any],
    *,
    if_match: IfMatch | None = None,
) -> Cluster:
    """Change a cluster (the web's edit and context choice, the API's PATCH), its context
    checked against its kubeconfig: an uploaded one holds only the context chosen at upload
    (another needs the kubeconfig uploaded again), a file's must have it. Access switched to
    in-cluster or to a file forgets the uploaded kubeconfig."""
    changes = dict(changes)
    to_file = bool(changes.get("kubeconfig"))
    if changes.get("access") == "in-cluster" or to_file:
        if stored(cluster):
            changes |= _UNSEALED
    elif stored(cluster) and "context" in changes:
        wanted = changes["context"] or cluster.context
        if wanted != cluster.context:
            raise Invalid(
                f"the uploaded kubeconfig holds only context {cluster.context!r} (the server "
                "keeps only the context chosen at upload); to use another, upload the "
                "kubeconfig again and choose it",
                "context",
            )
        changes["context"] = wanted
    elif changes.get("context") and cluster.access == "kubeconfig":
        found = contexts(cluster)
        if found is not None and changes["context"] not in found.names:
            raise Invalid(
                f"the kubeconfig has no context {changes['context']!r}; it has "
                f"{', '.join(found.names)}",
                "context",
            )
    return clusters.update_cluster(session, actor, cluster, changes, if_match=if_match)


def contexts(cluster: Cluster) -> Contexts | None:
    """The contexts the cluster may use: the one of an uploaded kubeconfig, else those of its
    kubeconfig file; None when it has none or the file is not readable (the cluster's sync
    state says why)."""
    if stored(cluster):
        return Contexts((cluster.context,), cluster.context)
    if cluster.access != "kubeconfig" or not cluster.kubeconfig:
        return None
    try:
        with open(os.path.expanduser(cluster.kubeconfig), encoding="utf-8") as f:
            return contexts_of(f.read(LIMIT + 1))
    except (OSError, UnicodeDecodeError, KubeconfigError):
        return None


def access_of(vault: Vault, cluster: Cluster) -> Access:
    """How the sync, Test connection and workloads reach the cluster; an uploaded kubeconfig
    decrypted (no file). A KubeError when it does not decrypt."""
    if cluster.access == "in-cluster":
        return Access(in_cluster=True)
    if cluster.kubeconfig_blob is None or cluster.kubeconfig_key_id is None:
        return Access(False, cluster.kubeconfig or "", cluster.context or "")
    try:
        text = vault.decrypt(
            cluster.kubeconfig_key_id, cluster.kubeconfig_blob, kubeconfig_bound(cluster.id)
        )
    except VaultError as e:
        raise KubeError(f"the cluster's uploaded kubeconfig cannot be read: {e}") from None
    return Access(False, "", cluster.context, config=json.loads(text))
