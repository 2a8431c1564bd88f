"""Node tokens: API tokens bound to one cluster, which its nodes' kubelet credential provider
presents to read the cluster's node credentials (services/node_credentials.py) and nothing
else. Admins issue, list and revoke them; each issue and revocation is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.auth.hashing import token_hash
from pullkeeper.services.auth.tokens import IssuedToken, new_token
from pullkeeper.services.auth.users import check_admin
from pullkeeper.services.errors import Invalid, NotFound
from pullkeeper.store.models import NODE_TOKEN, ApiToken, Cluster, User, utcnow

__all__ = ["issue_node_token", "list_node_tokens", "node_token_dict", "revoke_node_token"]


def issue_node_token(
    session: Session, actor: Actor, cluster: Cluster, name: str, ttl: timedelta | None
) -> IssuedToken:
    """A new node token for the cluster (admins); its plaintext exists only in the result."""
    check_admin(actor, "issue node tokens")
    if len(name) > 64:
        raise Invalid("a node token's name is 64 characters at most", "name")
    token = new_token()
    expires = utcnow() + ttl if ttl else None
    row = ApiToken(
        user_id=actor.user_id,
        name=name,
        token_hash=token_hash(token),
        expires_at=expires,
        kind=NODE_TOKEN,
        cluster_id=cluster.id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "node_token.create",
        "token",
        row.id,
        after=_audited(row, cluster),
    )
    return IssuedToken(row.id, token, expires)


def _audited(row: ApiToken, cluster: Cluster) -> dict[str, Any]:
    return {
        "cluster": cluster.name,
        "name": row.name,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked": row.revoked_at is not None,
    }


def node_token_dict(row: ApiToken, cluster: Cluster, issued_by: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "cluster": cluster.name,
        "created_at": row.created_at.isoformat(),
        "created_by": issued_by,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked": row.revoked_at is not None,
    }


def list_node_tokens(session: Session, actor: Actor, cluster: Cluster) -> list[dict[str, Any]]:
    """The cluster's node tokens, newest first (admins); never their values."""
    check_admin(actor, "list node tokens")
    rows = session.execute(
        select(ApiToken, User.username)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.kind == NODE_TOKEN, ApiToken.cluster_id == cluster.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    ).all()
    return [node_token_dict(row, cluster, by) for row, by in rows]


def revoke_node_token(session: Session, actor: Actor, cluster: Cluster, token_id: str) -> None:
    """Revoke one of the cluster's node tokens now (admins); revoking it again does nothing."""
    check_admin(actor, "revoke node tokens")
    row = session.get(ApiToken, token_id)
    if row is None or row.kind != NODE_TOKEN or row.cluster_id != cluster.id:
        raise NotFound(f"cluster {cluster.name!r} has no node token {token_id!r}")
    if row.revoked_at is None:
        before = _audited(row, cluster)
        row.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "node_token.revoke",
            "token",
            row.id,
            before=before,
            after=_audited(row, cluster),
        )
