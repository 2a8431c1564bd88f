"""Users, passwords, API tokens, role bindings and the first start."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pullkeeper.core import passwords
from pullkeeper.core.names import InvalidName, validate_label
from pullkeeper.services import audit
from pullkeeper.services.actor import PROJECT_ROLES, Actor
from pullkeeper.services.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
    WrongCurrentPassword,
    WrongPassword,
)
from pullkeeper.store.models import ApiToken, LoginFailure, Project, RoleBinding, User, utcnow

TOKEN_PREFIX = "pk_"  # noqa: S105 - a prefix, not a secret
ADMIN = "admin"
_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown user as slow as for a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough to store them.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class LoginThrottle:
    """At most `limit` failed logins per user name and source address in a minute.

    The failures are rows in the store, written in the login's own transaction (which
    commits though the login is refused: WrongPassword keeps its writes), so every server
    process sharing the store counts the same attempts.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, timedelta(seconds=window)

    def check(self, session: Session, username: str, source: str) -> None:
        since = utcnow() - self.window
        recent = list(
            session.scalars(
                select(LoginFailure.at)
                .where(
                    LoginFailure.username == username,
                    LoginFailure.source == source,
                    LoginFailure.at > since,
                )
                .order_by(LoginFailure.at)
            )
        )
        if len(recent) >= self.limit:
            wait = int((recent[0] - since).total_seconds()) + 1
            raise TooManyRequests(
                f"too many failed logins for {username!r}; try again in {wait}s", wait
            )

    def failed(self, session: Session, username: str, source: str) -> None:
        now = utcnow()
        # Old failures count no more: the table holds about a minute of them.
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.window))
        session.add(LoginFailure(username=username[:64], source=source[:64], at=now))

    def succeeded(self, session: Session, username: str, source: str) -> None:
        session.execute(
            delete(LoginFailure).where(
                LoginFailure.username == username, LoginFailure.source == source
            )
        )


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "admin": user.is_admin,
        "viewer": user.viewer,
        "created_at": user.created_at.isoformat(),
    }


def _check_password(password: str, username: str, field_name: str) -> None:
    try:
        passwords.check(password, username)
    except passwords.WeakPassword as e:
        raise Invalid(str(e), field_name) from None


def create_user(
    session: Session, actor: Actor, username: str, password: str, *, admin: bool, viewer: bool
) -> User:
    try:
        validate_label(username, "username")
    except InvalidName as e:
        raise Invalid(str(e), "username") from None
    _check_password(password, username, "password")
    if session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} already exists", "username")
    user = User(
        username=username, password_hash=_hasher.hash(password), is_admin=admin, viewer=viewer
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id, after=user_dict(user))
    return user


def get_user(session: Session, ref: str) -> User:
    user = session.get(User, ref) or session.scalar(select(User).where(User.username == ref))
    if user is None:
        raise NotFound(f"no user {ref!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


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
    row = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token), expires_at=expires)
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


def list_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == actor.user_id).order_by(ApiToken.created_at)
        )
    )


def revoke_token(session: Session, actor: Actor, token_id: str) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != actor.user_id and not actor.is_admin):
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
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        )
    )


# Failed current-password checks share the login throttle under a source of their own:
# a stolen session must not become a way to guess the password.
_CHANGE_SOURCE = "password-change"


def _replace_password(
    session: Session, actor: Actor, user: User, new: str, keep_token: str | None, action: str
) -> int:
    """Set the hash, revoke every other token of the user and audit it; how many were revoked."""
    user.password_hash = _hasher.hash(new)
    now = utcnow()
    others = session.scalars(
        select(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.revoked_at.is_(None),
            ApiToken.id != (keep_token or ""),
        )
    )
    revoked = 0
    for row in others:
        row.revoked_at = now
        revoked += 1
    audit.record(
        session,
        actor,
        action,
        "user",
        user.id,
        after={"user": user.username, "revoked_tokens": revoked},
    )
    return revoked


def change_password(
    session: Session,
    throttle: LoginThrottle,
    actor: Actor,
    user: User,
    current: str,
    new: str,
    *,
    keep_token: str | None = None,
) -> int:
    """Replace the actor's own password; the user's other tokens are revoked (returns how many).

    `keep_token` is the id of the token the change was made with (the browser session),
    which stays valid so the change does not log the user out where they made it.
    """
    if user.id != actor.user_id:
        raise Forbidden(
            "a password is changed by its user; an admin sets a new one with a password reset"
        )
    throttle.check(session, user.username, _CHANGE_SOURCE)
    try:
        _hasher.verify(user.password_hash or _DUMMY_HASH, current)
        ok = bool(user.password_hash)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        throttle.failed(session, user.username, _CHANGE_SOURCE)
        raise WrongCurrentPassword("the current password is wrong", "current")
    throttle.succeeded(session, user.username, _CHANGE_SOURCE)
    _check_password(new, user.username, "new")
    if new == current:
        raise Invalid("the new password is the current one; choose another", "new")
    return _replace_password(session, actor, user, new, keep_token, "user.password")


def reset_password(session: Session, actor: Actor, user: User, new: str) -> int:
    """An admin sets another user's password (forgotten, or to lock a leaked one out); every
    token of that user is revoked (returns how many), so each of their sessions ends."""
    if not actor.is_admin:
        raise Forbidden("only an admin can reset another user's password")
    if user.id == actor.user_id:
        raise Invalid(
            "your own password is changed with your current one: use Change password", "password"
        )
    _check_password(new, user.username, "password")
    return _replace_password(session, actor, user, new, None, "user.password_reset")


def actor_for(session: Session, user: User, source: str) -> Actor:
    roles = dict(
        session.execute(
            select(RoleBinding.project_id, RoleBinding.role).where(RoleBinding.user_id == user.id)
        ).all()
    )
    return Actor(user.id, user.username, user.is_admin, user.viewer, roles, source)


class TokenCache:
    """Actors of recently seen tokens, so most requests skip three queries.

    Entries live `ttl` seconds at most and never past the token's expiry; the
    server clears the cache on every write it commits, so a revocation or a
    role change takes effect at once in this process, and within `ttl` in other
    processes sharing the store.
    """

    MAX = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[Actor, datetime | None, float]] = {}
        self._lock = threading.Lock()
        # Bumped by clear(): an actor read before a write must not be stored after it.
        self.generation = 0

    def get(self, token: str, source: str) -> Actor | None:
        key = _token_hash(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        actor, expires_at, until = entry
        if time.monotonic() >= until or (expires_at is not None and expires_at <= utcnow()):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return replace(actor, source=source)

    def put(self, token: str, actor: Actor, expires_at: datetime | None, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.MAX:
                self._entries.clear()
            self._entries[_token_hash(token)] = (actor, expires_at, time.monotonic() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


def authenticate(
    session: Session, token: str, source: str, cache: TokenCache | None = None
) -> Actor:
    """The actor a bearer token stands for; Unauthorized when it is unknown, expired or revoked."""
    generation = cache.generation if cache else 0
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API token is not valid; log in again")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("the API token has expired; log in again")
    user = session.get(User, row.user_id)
    if user is None:
        raise Unauthorized("the API token is not valid; log in again")
    actor = actor_for(session, user, source)
    if cache:
        cache.put(token, actor, row.expires_at, generation)
    return actor


def login(
    session: Session,
    throttle: LoginThrottle,
    username: str,
    password: str,
    source: str,
    ttl: timedelta,
) -> IssuedToken:
    throttle.check(session, username, source)
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
        ok = user is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        throttle.failed(session, username, source)
        raise WrongPassword("wrong user name or password")
    throttle.succeeded(session, username, source)
    actor = actor_for(session, user, source)
    audit.record(session, actor, "user.login", "user", user.id)
    return issue_token(session, actor, user, "login", ttl)


def bind_role(session: Session, actor: Actor, project: Project, user: User, role: str) -> None:
    if role not in PROJECT_ROLES:
        raise Invalid(f"role must be one of {', '.join(PROJECT_ROLES)}", "role")
    row = session.scalar(
        select(RoleBinding).where(
            RoleBinding.user_id == user.id, RoleBinding.project_id == project.id
        )
    )
    before = {"role": row.role} if row else None
    if row is None:
        session.add(RoleBinding(user_id=user.id, project_id=project.id, role=role))
    else:
        row.role = role
    audit.record(
        session,
        actor,
        "member.set",
        "project",
        project.id,
        project_id=project.id,
        before=before,
        after={"user": user.username, "role": role},
    )


def unbind_role(session: Session, actor: Actor, project: Project, user: User) -> None:
    row = session.scalar(
        select(RoleBinding).where(
            RoleBinding.user_id == user.id, RoleBinding.project_id == project.id
        )
    )
    if row is None:
        raise NotFound(f"{user.username!r} has no role in project {project.name!r}")
    session.delete(row)
    audit.record(
        session,
        actor,
        "member.remove",
        "project",
        project.id,
        project_id=project.id,
        before={"user": user.username, "role": row.role},
    )


def may_change_members(actor: Actor, project: Project) -> bool:
    return actor.owns(project.id)


def check_may_change_members(actor: Actor, project: Project) -> None:
    if not may_change_members(actor, project):
        raise Forbidden("only an admin or the project's owner can change its members")


def set_member(session: Session, actor: Actor, project: Project, username: str, role: str) -> User:
    """Give a user a role in the project (or change it): admins and the project's owners."""
    check_may_change_members(actor, project)
    user = get_user(session, username)
    bind_role(session, actor, project, user, role)
    return user


def remove_member(session: Session, actor: Actor, project: Project, username: str) -> None:
    """Take a user's role in the project away: admins and the project's owners."""
    check_may_change_members(actor, project)
    unbind_role(session, actor, project, get_user(session, username))


def member_counts(session: Session, project_ids: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(RoleBinding.project_id, func.count())
        .where(RoleBinding.project_id.in_(project_ids))
        .group_by(RoleBinding.project_id)
    )
    return {p: n for p, n in rows}


def members(session: Session, project: Project) -> list[dict[str, str]]:
    rows = session.execute(
        select(User.username, RoleBinding.role)
        .join(RoleBinding, RoleBinding.user_id == User.id)
        .where(RoleBinding.project_id == project.id)
        .order_by(User.username)
    )
    return [{"user": u, "role": r} for u, r in rows]


@dataclass(frozen=True, slots=True)
class FirstStart:
    """The first-start admin's login, and the private files it was written to."""

    password: str = field(repr=False)
    token: str = field(repr=False)
    password_file: Path | None = None
    token_file: Path | None = None  # None when the admin_token setting chose the token


def bootstrap(session: Session, admin_token: str | None) -> FirstStart | None:
    """Create the admin on first start; returns its login once, None when users exist."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = secrets.token_urlsafe(18)
    system = Actor("", "system", True)
    user = create_user(session, system, ADMIN, password, admin=True, viewer=False)
    issued = issue_token(session, system, user, "initial", None, admin_token)
    return FirstStart(password, issued.token)
