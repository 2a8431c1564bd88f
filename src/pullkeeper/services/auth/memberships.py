"""Project memberships: a user's role in a project (a role binding), who may change them, and
the actor a user is with their roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pullkeeper.services import audit
from pullkeeper.services.actor import PROJECT_ROLES, Actor
from pullkeeper.services.auth.users import get_user
from pullkeeper.services.errors import Forbidden, Invalid, NotFound
from pullkeeper.store.models import Project, RoleBinding, User
from pullkeeper.store.queries import role_binding


def actor_for(session: Session, user: User, source: str) -> Actor:
    roles = dict(
        session.execute(
            select(RoleBinding.project_id, RoleBinding.role).where(RoleBinding.user_id == user.id)
        ).all()
    )
    return Actor(user.id, user.username, user.is_admin, user.viewer, roles, source)


def bind_role(session: Session, actor: Actor, project: Project, user: User, role: str) -> None:
    if role not in PROJECT_ROLES:
        raise Invalid(f"role must be one of {', '.join(PROJECT_ROLES)}", "role")
    row = role_binding(session, user.id, project.id)
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
    row = role_binding(session, user.id, project.id)
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


def members(session: Session, project: Project) -> list[dict[str, Any]]:
    """A project's members, their roles, and whether an admin disabled them."""
    rows = session.execute(
        select(User.username, RoleBinding.role, User.disabled)
        .join(RoleBinding, RoleBinding.user_id == User.id)
        .where(RoleBinding.project_id == project.id)
        .order_by(User.username)
    )
    return [{"user": u, "role": r, "disabled": d} for u, r, d in rows]
