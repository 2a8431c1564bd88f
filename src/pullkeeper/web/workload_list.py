"""The Workloads page: a cluster's Deployments, StatefulSets and DaemonSets (of a namespace,
a project, or those naming a registry's Secret) with how their images pull, each Deployment
linked to its page (web/workloads.py)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from pullkeeper.services import clusters
from pullkeeper.services import workloads as svc
from pullkeeper.services.errors import ServiceError
from pullkeeper.web import session
from pullkeeper.web.render import WebRoute, page

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Name = Annotated[str, Query(max_length=253)]


def _url(cluster: str, item: dict[str, Any]) -> str:
    """The workload's page: Deployments have one (the rollout), the other kinds none yet."""
    if item["kind"] != "Deployment":
        return ""
    parts = (cluster, item["namespace"], item["name"])
    return "/workloads/" + "/".join(quote(p, safe="") for p in parts)


@router.get("/workloads")
def list_page(
    request: Request,
    cluster: Name = "",
    namespace: Name = "",
    project: Name = "",
    credential: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    web = session.required(request)
    server = session.server_of(request)
    with server.reading() as s:
        known = [c.name for c in clusters.list_clusters(s, web.actor)]
        projects = clusters.project_choices(s, web.actor)
    if not cluster and not credential and known:
        cluster = known[0]  # the first, as the picker shows it
    filters = {"cluster": cluster, "namespace": namespace, "project": project}
    error, found = "", None
    try:
        found = svc.listing(
            server,
            web.actor,
            cluster=cluster,
            namespace=namespace,
            project=project,
            credential=credential,
        )
    except ServiceError as e:
        error = e.message
    items = found["items"] if found else []
    for item in items:
        item["url"] = _url(found["cluster"] if found else cluster, item)
    return page(
        request,
        "workloads.html",
        web,
        found=found,
        items=items,
        error=error,
        filters=filters,
        credential=credential,
        clusters=known,
        projects=[p for p in projects if not cluster or p.cluster == cluster],
    )
