"""API tokens: issued at login or on request, listed, revoked, and the actor one stands for."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.auth.hashing import password_matches, token_hash
from pullkeeper.services.auth.memberships import actor_for
from pullkeeper.services.auth.throttle import LoginThrottle
from pullkeeper.services.auth.token_cache import TokenCache
from pullkeeper.services.errors import Forbidden, NotFound, Unauthorized, WrongPassword
from pullkeeper.store.models import NODE_TOKEN, USER_TOKEN, ApiToken, User, utcnow
from pullkeeper.store.queries import user_named

TOKEN_PREFIX = "pk_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as issued: the plaintext exists only here, once."""

    id: str
    token: str
    expires_at: datetime | None


def issue_token(
    session: Session,
    actor: Actor,
    user: User,
    name: str,
    ttl: timedelta | None,
    token: str | None = None,
) -> IssuedToken:
    token = token or new_token()
    expires = utcnow() + ttl if ttl else None
    row = ApiToken(user_id=user.id, name=name, token_hash=token_hash(token), expires_at=expires)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        "token",
        row.id,
        after={
            "user": user.username,
            "name": name,
            "expires_at": expires.isoformat() if expires else None,
        },
    )
    return IssuedToken(row.id, token, expires)


def token_dict(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked": t.revoked_at is not None,
    }


# A user's own tokens: node tokens are their cluster's (services/auth/node_tokens.py).
_USER_TOKEN = ApiToken.kind == USER_TOKEN


def list_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == actor.user_id, _USER_TOKEN)
            .order_by(ApiToken.created_at)
        )
    )


def revoke_token(session: Session, actor: Actor, token_id: str) -> None:
    row = session.get(ApiToken, token_id)
    if (
        row is None
        or row.kind != USER_TOKEN
        or (row.user_id != actor.user_id and not actor.is_admin)
    ):
        raise NotFound(f"no token {token_id!r}")
    if row.revoked_at is None:
        before = token_dict(row)
        row.revoked_at = utcnow()
        audit.record(
            session, actor, "token.revoke", "token", row.id, before=before, after=token_dict(row)
        )


def list_user_tokens(session: Session, actor: Actor, user: User) -> list[ApiToken]:
    """A user's tokens, newest first: their own for anyone, everyone's for an admin."""
    if user.id != actor.user_id and not actor.is_admin:
        raise Forbidden("only an admin can see another user's tokens")
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, _USER_TOKEN)
            .order_by(ApiToken.created_at.desc())
        )
    )


def authenticate(
    session: Session, token: str, source: str, cache: TokenCache | None = None
) -> Actor:
    """The actor a bearer token stands for, a user's or a node token's (see of_kind);
    Unauthorized when it is unknown, expired or revoked."""
    generation = cache.generation if cache else 0
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API token is not valid; log in again")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("the API token has expired; log in again")
    if row.kind == NODE_TOKEN:
        # No user's roles: what it may do is read its cluster's node credentials.
        actor = Actor("", f"node-token:{row.id}", source=source, node_cluster_id=row.cluster_id)
    else:
        user = session.get(User, row.user_id)
        if user is None or user.disabled:
            # A disabled user's tokens are revoked too; this holds for one issued meanwhile.
            raise Unauthorized("the API token is not valid; log in again")
        actor = actor_for(session, user, source)
    if cache:
        cache.put(token, actor, row.expires_at, generation)
    return actor


def of_kind(actor: Actor, *, node: bool) -> Actor:
    """The actor, when its token is of the kind asked for (a node token's, or a user's);
    Forbidden saying which token to use otherwise."""
    if node and actor.node_cluster_id is None:
        raise Forbidden(
            "only a node token reads node credentials: an admin issues one with "
            "`pullkeeper cluster node-token create CLUSTER`"
        )
    if not node and actor.node_cluster_id is not None:
        raise Forbidden(
            "a node token only reads its cluster's node credentials "
            "(GET /api/v1/node-credentials); use a user's API token for anything else"
        )
    return actor


def login(
    session: Session,
    throttle: LoginThrottle,
    username: str,
    password: str,
    source: str,
    ttl: timedelta,
) -> IssuedToken:
    """A new token for a user name and password, unless the throttle holds them back."""
    throttle.check(session, username, source)
    user = user_named(session, username)
    # The hash is checked even for an unknown user, so both take as long.
    if not password_matches(user.password_hash if user else "", password) or user is None:
        throttle.failed(session, username, source)
        raise WrongPassword("wrong user name or password")
    throttle.succeeded(session, username, source)
    if user.disabled:
        # Said only to whoever knows the password: that it is right but will not do.
        raise Forbidden(f"the user {username} is disabled; an admin can enable it again")
    actor = actor_for(session, user, source)
    audit.record(session, actor, "user.login", "user", user.id)
    return issue_token(session, actor, user, "login", ttl)
