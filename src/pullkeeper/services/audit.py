"""The audit trail: who did what to which object, when and from where; never a secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from pullkeeper.services import paging
from pullkeeper.services.actor import OWNER, Actor
from pullkeeper.services.errors import Invalid
from pullkeeper.store.models import AuditEvent

__all__ = ["page", "query", "record"]


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


_KEY = (int,)  # the cursor's key: the last event's id


def page(
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
    cursor: str | None = None,
) -> paging.Page:
    """Events the actor may read, newest first: all for admins, their own projects' (and
    their own) for the others; from the cursor when given (keyset), else from the offset."""
    at = paging.start(cursor, offset, _KEY)
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
    stmt = paging.seek(stmt, (AuditEvent.id,), at, limit, descending=True)
    events = list(session.scalars(stmt if at else stmt.offset(offset)))
    events, after, before = paging.page_of(events, at, limit, offset, lambda e: (e.id,))
    return paging.Page([_as_dict(e) for e in events], total, after, before)


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
    """A page's events and how many match in all (see page)."""
    found = page(
        session,
        actor,
        action=action,
        actor_name=actor_name,
        object_type=object_type,
        object_id=object_id,
        since=since,
        limit=limit,
        offset=offset,
    )
    return found.items, found.total
