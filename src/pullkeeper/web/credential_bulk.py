"""Deactivating or deleting the registries ticked on the Registries list: one confirmation
page naming exactly what goes (and what the user may not change), then each change as the
single ones make it (services/credential_bulk.py), then a page saying what was done."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response

from pullkeeper.services import credential_bulk
from pullkeeper.services import credentials as svc
from pullkeeper.services.errors import NotFound
from pullkeeper.web import security, session
from pullkeeper.web.render import WebRoute, page, see_other

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Ids = Annotated[list[str], Query(alias="id")]
Action = Annotated[str, Query(max_length=16)]


@router.get("/credentials/bulk")
def confirm(request: Request, ids: Ids = [], action: Action = "") -> Response:  # noqa: B006
    """What the ticked registries' action would do, to confirm (nothing changes yet)."""
    web = session.required(request)
    server = session.server_of(request)
    with server.reading() as s:
        found = credential_bulk.plan(
            s, web.actor, action, ids, server.settings.sync_excluded_namespaces
        )
        shown = found.as_dict()
    return page(request, "credential_bulk.html", web, plan=shown)


@router.post("/credentials/bulk")
def run(
    request: Request,
    ids: Annotated[list[str], Form(alias="id")] = [],  # noqa: B006
    action: Annotated[str, Form(max_length=16)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    web = session.required(request)
    security.check(request, csrf, web.csrf)
    server = session.server_of(request)
    with server.transaction() as s:
        done = credential_bulk.apply(
            s, web.actor, action, ids, server.settings.sync_excluded_namespaces
        )
        result = done.as_dict()
    # The refused by id (the store's, looked up again to name them), the gone only counted:
    # nothing the form sent goes back into the address.
    query = [("action", action), ("changed", str(len(result["changed"])))]
    query += [("refused", c["id"]) for c in result["refused"]]
    query.append(("missing", str(len(result["missing"]))))
    query.append(("unchanged", str(len(result["unchanged"]))))
    return see_other("/credentials/bulk/done?" + urlencode(query))


@router.get("/credentials/bulk/done")
def done(
    request: Request,
    action: Action = "",
    changed: Annotated[int, Query(ge=0, le=credential_bulk.MAX_IDS)] = 0,
    refused: Annotated[list[str], Query()] = [],  # noqa: B006
    missing: Annotated[int, Query(ge=0, le=credential_bulk.MAX_IDS)] = 0,
    unchanged: Annotated[int, Query(ge=0, le=credential_bulk.MAX_IDS)] = 0,
) -> Response:
    """What a bulk action did: how many it changed, and, by name, those it left as they are."""
    web = session.required(request)
    names = []
    with session.server_of(request).reading() as s:
        for credential_id in refused:
            try:
                cred = svc.get(s, web.actor, credential_id)
            except NotFound:
                continue
            names.append({"id": cred.id, "name": cred.name})
    return page(
        request,
        "credential_bulk_done.html",
        web,
        action=action if action in credential_bulk.ACTIONS else "",
        changed=changed,
        refused=names,
        missing=missing,
        unchanged=unchanged,
        reason=credential_bulk.REFUSED,
    )
