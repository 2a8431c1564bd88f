"""Users and their passwords: creating and finding users, changing and resetting passwords."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.core import passwords
from pullkeeper.core.names import InvalidName, validate_label
from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.auth.hashing import hash_password, password_matches
from pullkeeper.services.auth.throttle import LoginThrottle
from pullkeeper.services.errors import Conflict, Forbidden, Invalid, NotFound, WrongCurrentPassword
from pullkeeper.store.models import USER_TOKEN, ApiToken, User, utcnow
from pullkeeper.store.queries import user_named

# Failed current-password checks share the login throttle under a source of their own:
# a stolen session must not become a way to guess the password.
_CHANGE_SOURCE = "password-change"


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "admin": user.is_admin,
        "viewer": user.viewer,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


def check_admin(actor: Actor, what: str) -> None:
    """Managing users is for admins: Forbidden to anyone else, saying `what` they tried
    ("list users")."""
    if not actor.is_admin:
        raise Forbidden(f"only an admin can {what}")


def _check_password(password: str, username: str, field_name: str) -> None:
    try:
        passwords.check(password, username)
    except passwords.WeakPassword as e:
        raise Invalid(str(e), field_name) from None


def create_user(
    session: Session, actor: Actor, username: str, password: str, *, admin: bool, viewer: bool
) -> User:
    check_admin(actor, "create users")
    if admin and viewer:
        raise Invalid(
            "a user is an admin or a viewer, not both (an admin already reads everything); "
            "choose one",
            "role",
        )
    try:
        validate_label(username, "username")
    except InvalidName as e:
        raise Invalid(str(e), "username") from None
    _check_password(password, username, "password")
    if user_named(session, username):
        raise Conflict(f"user {username!r} already exists", "username")
    user = User(
        username=username, password_hash=hash_password(password), is_admin=admin, viewer=viewer
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id, after=user_dict(user))
    return user


def get_user(session: Session, ref: str) -> User:
    user = session.get(User, ref) or user_named(session, ref)
    if user is None:
        raise NotFound(f"no user {ref!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _replace_password(
    session: Session, actor: Actor, user: User, new: str, keep_token: str | None, action: str
) -> int:
    """Set the hash, revoke every other token of the user (the node tokens they issued are
    their clusters') and audit it; how many were revoked."""
    user.password_hash = hash_password(new)
    now = utcnow()
    others = session.scalars(
        select(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.kind == USER_TOKEN,
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
    if not password_matches(user.password_hash, current):
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
    check_admin(actor, "reset another user's password")
    if user.id == actor.user_id:
        raise Invalid(
            "your own password is changed with your current one: use Change password", "password"
        )
    _check_password(new, user.username, "password")
    return _replace_password(session, actor, user, new, None, "user.password_reset")
