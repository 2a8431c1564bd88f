"""Node credentials: what a cluster's nodes pull with when the kubelet asks pullkeeper's
credential provider, read with a node token.

A node has no namespace, so its credentials are the cluster's effective credentials of
cluster scope (those reaching every namespace), each with its current password (a cloud
credential's newest token). The answer holds the auth entries the kubelet's keyring would
use for the image (core.credential_provider.auth_for); each password read is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.core.credential_provider import CacheKeyType, auth_for
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.keyring import Keyring
from pullkeeper.core.reference import InvalidReference, parse_normalized_named
from pullkeeper.services import audit, credentials
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, Invalid, Unauthorized
from pullkeeper.store.models import Cluster, Credential
from pullkeeper.store.vault import Vault

__all__ = ["node_cluster", "node_credentials"]


def node_cluster(session: Session, node: Actor, cluster_ref: str) -> Cluster:
    """The node token's cluster, which a node's request names as `cluster_ref` (name or
    id)."""
    cluster = session.get(Cluster, node.node_cluster_id) if node.node_cluster_id else None
    if cluster is None:
        raise Unauthorized("the node token is not valid; issue a new one")
    if cluster_ref not in (cluster.id, cluster.name):
        raise Forbidden(
            f"this node token is for cluster {cluster.name!r}, not {cluster_ref!r}: give "
            "--cluster its own cluster, or a token of that cluster"
        )
    return cluster


def node_credentials(
    session: Session,
    node: Actor,
    vault: Vault,
    cluster_ref: str,
    image: str,
    cache_key_type: CacheKeyType,
) -> dict[str, Any]:
    """The auth entries for `image` (a repository name, as the kubelet asks) among the node
    credentials of the node token's cluster, which must be `cluster_ref` (name or id);
    `expires_at`: when the soonest of their cloud tokens expires (None: none has one)."""
    cluster = node_cluster(session, node, cluster_ref)
    try:
        repository = parse_normalized_named(image).name
    except InvalidReference as e:
        raise Invalid(f"{image!r} is not a valid image reference: {e}", "image") from None
    rows = credentials.effective_rows(session, cluster.id, Credential.scope == "cluster")
    keyring = Keyring()
    # In Secret order (by name), as the kubelet would meet them in imagePullSecrets.
    for r in sorted(rows, key=lambda r: r.name):
        keyring.add([(r.server, AuthEntry(r.username, "", r.email))], r.id)
    wanted = auth_for(keyring, repository, cache_key_type)
    found = {
        c.id: c
        for c in session.scalars(
            select(Credential).where(Credential.id.in_([a.source for a in wanted]))
        )
    }
    auth = []
    expires: list[datetime] = []
    for a in wanted:
        cred = found[a.source]
        password = vault.decrypt(cred.secret_key_id, cred.secret_blob, cred.id)
        audit.record(
            session,
            node,
            "credential.read_secret",
            "credential",
            cred.id,
            after={"cluster": cluster.name, "image": repository, "by": "node token"},
        )
        auth.append({"glob": a.glob, "username": a.username, "password": password})
        if cred.token_expires_at is not None:
            expires.append(cred.token_expires_at)
    return {
        "cluster": cluster.name,
        "image": repository,
        "cache_key_type": cache_key_type.value,
        "auth": auth,
        "expires_at": min(expires).isoformat() if expires else None,
    }
