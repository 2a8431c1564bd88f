"""The Audit page: who did what to which object, when; each reader sees what the API shows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from pullkeeper.services import audit
from pullkeeper.services.errors import Invalid, ServiceError
from pullkeeper.web import session
from pullkeeper.web.render import WebRoute, page, pages

router = APIRouter(route_class=WebRoute, include_in_schema=False)
PAGE_SIZE = 50


def _since(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"since: {value!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)", "since"
        ) from None


def changed(event: dict[str, Any]) -> list[str]:
    """The fields an event changed (names only; values stay in the API's full record)."""
    before, after = event["before"] or {}, event["after"] or {}
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


@router.get("/audit")
def audit_page(
    request: Request,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
) -> Response:
    web = session.required(request)
    error = ""
    items: list[dict[str, Any]] = []
    total = 0
    try:
        when = _since(since.strip())
        with session.server_of(request).reading() as s:
            items, total = audit.query(
                s,
                web.actor,
                action=action.strip() or None,
                actor_name=actor.strip() or None,
                since=when,
                limit=PAGE_SIZE,
                offset=(page_no - 1) * PAGE_SIZE,
            )
    except ServiceError as e:
        error = e.message
    for item in items:
        item["changed"] = changed(item)
    filters = {"action": action, "actor": actor, "since": since}
    return page(
        request,
        "audit.html",
        web,
        items=items,
        total=total,
        error=error,
        filters=filters,
        filtered=any(filters.values()),
        **pages("/audit", filters, page_no, total, PAGE_SIZE),
    )
