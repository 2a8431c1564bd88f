"""Disabling, enabling and deleting users (admins), and what a deletion takes with it.

A disabled user is kept, with their audit history, but cannot log in and no token of theirs
is accepted; disabling revokes their tokens, so enabling again does not bring them back.
Deleting removes the user, their project memberships and their tokens. Neither is done to
oneself nor to the last active admin, which would leave no one to undo it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.auth.users import check_admin, user_dict
from pullkeeper.services.errors import Conflict, Invalid
from pullkeeper.store.models import (
    NODE_TOKEN,
    USER_TOKEN,
    ApiToken,
    Cluster,
    Project,
    RoleBinding,
    User,
    utcnow,
)


class UserProject(NamedTuple):
    """A project a user has a role in."""

    id: str
    name: str
    cluster: str
    role: str


def user_projects(session: Session, user: User) -> list[UserProject]:
    """The projects the user belongs to with their role, by cluster then project name."""
    rows = session.execute(
        select(Project.id, Project.name, Cluster.name, RoleBinding.role)
        .join(RoleBinding, RoleBinding.project_id == Project.id)
        .join(Cluster, Cluster.id == Project.cluster_id)
        .where(RoleBinding.user_id == user.id)
        .order_by(Cluster.name, Project.name)
    )
    return [UserProject(*row) for row in rows]


def _valid_tokens(user: User) -> list[ColumnElement[bool]]:
    now = utcnow()
    return [
        ApiToken.user_id == user.id,
        ApiToken.kind == USER_TOKEN,
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now),
    ]


@dataclass(frozen=True, slots=True)
class Deletion:
    """What deleting a user takes with them: shown before it is confirmed."""

    projects: int
    tokens: int  # valid API tokens and browser sessions


def deletion(session: Session, user: User) -> Deletion:
    projects = session.scalar(
        select(func.count()).select_from(RoleBinding).where(RoleBinding.user_id == user.id)
    )
    tokens = session.scalar(select(func.count()).select_from(ApiToken).where(*_valid_tokens(user)))
    return Deletion(int(projects or 0), int(tokens or 0))


def _check_may_remove(session: Session, actor: Actor, user: User, what: str) -> None:
    """Refused for oneself and for the last active admin: no one would be left to undo it."""
    check_admin(actor, f"{what} users")
    if user.id == actor.user_id:
        raise Invalid(f"you cannot {what} yourself; another admin can")
    if user.is_admin and not user.disabled:
        # Locked on PostgreSQL: two admins disabling each other at once must not both pass.
        admins = session.scalars(
            select(User.id)
            .where(User.is_admin.is_(True), User.disabled.is_(False))
            .with_for_update()
        ).all()
        if len(admins) <= 1:
            raise Conflict(
                f"{user.username} is the last active admin; make another user an admin first"
            )


def disable_user(session: Session, actor: Actor, user: User) -> int:
    """Disable the user and revoke every token of theirs (returns how many): each of their
    sessions ends. Node tokens they issued are their clusters' and stay."""
    _check_may_remove(session, actor, user, "disable")
    if user.disabled:
        return 0
    before = user_dict(user)
    user.disabled = True
    now = utcnow()
    revoked = 0
    for row in session.scalars(
        select(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.kind == USER_TOKEN,
            ApiToken.revoked_at.is_(None),
        )
    ):
        row.revoked_at = now
        revoked += 1
    audit.record(
        session,
        actor,
        "user.disable",
        "user",
        user.id,
        before=before,
        after={**user_dict(user), "revoked_tokens": revoked},
    )
    return revoked


def enable_user(session: Session, actor: Actor, user: User) -> None:
    """Let a disabled user log in again; the tokens revoked when it was disabled stay so."""
    check_admin(actor, "enable users")
    if not user.disabled:
        return
    before = user_dict(user)
    user.disabled = False
    audit.record(
        session, actor, "user.enable", "user", user.id, before=before, after=user_dict(user)
    )


def delete_user(session: Session, actor: Actor, user: User) -> Deletion:
    """Delete the user with their memberships and tokens (returns what went). Refused while
    node tokens they issued are valid: those are their clusters', and would go with them."""
    _check_may_remove(session, actor, user, "delete")
    node_tokens = session.scalars(
        select(Cluster.name)
        .join(ApiToken, ApiToken.cluster_id == Cluster.id)
        .where(
            ApiToken.user_id == user.id,
            ApiToken.kind == NODE_TOKEN,
            ApiToken.revoked_at.is_(None),
        )
        .distinct()
        .order_by(Cluster.name)
    ).all()
    if node_tokens:
        raise Conflict(
            f"{user.username} issued node tokens still valid for the clusters "
            f"{', '.join(node_tokens)}; they would go with the user: revoke them first "
            "(`pullkeeper cluster node-token revoke CLUSTER ID`), or disable the user instead"
        )
    gone = deletion(session, user)
    projects = [p.name for p in user_projects(session, user)]
    before = {**user_dict(user), "projects": projects, "valid_tokens": gone.tokens}
    # Through the ORM's statements, not the foreign keys' cascade: the change log then says
    # that memberships and tokens changed too (store/changes.py).
    session.execute(delete(RoleBinding).where(RoleBinding.user_id == user.id))
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.delete(user)
    audit.record(session, actor, "user.delete", "user", user.id, before=before)
    return gone
