"""The namespace picker: a namespace field's choices from the live cluster (typed text still
goes), and a registry form's scope fields, both fetched again by htmx when the cluster
changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from pullkeeper.services import clusters, live_namespaces
from pullkeeper.services.errors import NotFound
from pullkeeper.web import session
from pullkeeper.web.render import WebRoute, page

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Text = Annotated[str, Query(max_length=253)]


def picker(request: Request, web: session.WebSession, cluster: str) -> dict[str, Any]:
    """What a namespace field offers for this cluster: {"cluster", "options", "note"}; no
    options before a cluster is chosen, or for one the actor cannot see."""
    found: dict[str, Any] = {"cluster": cluster, "options": [], "note": ""}
    if cluster:
        try:
            live = live_namespaces.list_live(session.server_of(request), web.actor, cluster)
        except NotFound:
            return found
        found |= {"options": live["items"], "note": live["note"]}
    return found


def scope_context(
    request: Request, web: session.WebSession, values: dict[str, Any], live: bool = True
) -> dict[str, Any]:
    """What _scope_fields.html shows besides values and errors: the clusters, the chosen
    cluster's projects (every visible one, by cluster, before one is chosen) and namespaces.
    A cluster not given is the only one, if there is one. Without live, no namespaces (the
    cluster is not asked)."""
    with session.server_of(request).reading() as s:
        known = [c.name for c in clusters.list_clusters(s, web.actor)]
        projects = clusters.project_choices(s, web.actor)
    if len(known) == 1:
        values.setdefault("cluster", known[0])  # the only one is chosen
    chosen = values.get("cluster") or ""
    if chosen in known:
        projects = [p for p in projects if p.cluster == chosen]
    return {
        "clusters": known,
        "projects": projects,
        "is_admin": web.actor.is_admin,
        "picker": picker(request, web, chosen if live else ""),
    }


@router.get("/namespaces/options")
def options(request: Request, cluster: Text = "") -> Response:
    """The datalist of a cluster's namespaces (htmx swaps it in when the cluster changes)."""
    web = session.required(request)
    return page(request, "_namespace_options.html", web, picker=picker(request, web, cluster))


@router.get("/credentials/new/scope")
def scope_fields(
    request: Request,
    cluster: Text = "",
    scope: Annotated[str, Query(max_length=16)] = "",
    project: Text = "",
    namespace: Text = "",
) -> Response:
    """The registry form's scope fields for another cluster, of which htmx takes the project
    choices (the namespaces come from /namespaces/options: this answers without the cluster)."""
    web = session.required(request)
    values = {"cluster": cluster, "scope": scope, "project": project, "namespace": namespace}
    context = scope_context(request, web, values, live=False)
    if project not in {p.id for p in context["projects"]}:
        values["project"] = ""  # a project of the cluster left behind
    return page(request, "_scope_fields.html", web, values=values, errors={}, **context)
