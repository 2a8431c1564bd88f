"""The audit trail: who did what to which object, when and from where; never a secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from pullkeeper.services.actor import OWNER, Actor
from pullkeeper.services.errors import Invalid
from pullkeeper.store.models import AuditEvent

__all__ = ["query", "record"]


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str = "",
    *,
    project_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an event to the caller's transaction, so it lands exactly when the change does."""
    session.add(
        AuditEvent(
            actor=actor.username,
            source=actor.source,
            action=action,
            object_type=object_type,
            object_id=object_id,
            project_id=project_id,
            before=before,
            after=after,
        )
    )


def _as_dict(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "source": e.source,
        "action": e.action,
        "object_type": e.object_type,
        "object_id": e.object_id,
        "project_id": e.project_id,
        "before": e.before,
        "after": e.after,
    }


def query(
    session: Session,
    actor: Actor,
    *,
    action: str | None = None,
    actor_name: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Events the actor may read: all for admins, their own projects' for owners."""
    stmt: Select[AuditEvent] = select(AuditEvent)
    if not actor.is_admin:
        owned = [p for p, role in actor.projects.items() if role == OWNER]
        stmt = stmt.where(or_(AuditEvent.project_id.in_(owned), AuditEvent.actor == actor.username))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor_name:
        stmt = stmt.where(AuditEvent.actor == actor_name)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if since:
        # A time without a zone is UTC, as every stored time is.
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        try:
            since = since.astimezone(UTC)
        except (OverflowError, ValueError):
            raise Invalid(
                "since is outside the range of dates the store can hold", "since"
            ) from None
        stmt = stmt.where(AuditEvent.at >= since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit).offset(offset))
    return [_as_dict(e) for e in rows], total
