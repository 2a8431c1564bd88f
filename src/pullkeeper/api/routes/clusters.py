"""Clusters, projects and namespaces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from pullkeeper.api import conditional
from pullkeeper.api.conditional import IfMatchDep, tagged
from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.services import clusters as svc
from pullkeeper.services import desired_state, kubeconfigs, live_namespaces
from pullkeeper.services.errors import Invalid
from pullkeeper.services.schemas import (
    ClusterIn,
    ClusterPatch,
    NamespaceIn,
    ProjectIn,
    ProjectPatch,
)

router = APIRouter(tags=["clusters"])


@router.get("/clusters")
def list_clusters(actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    with server.reading() as session:
        return {"items": [svc.cluster_view(c, actor) for c in svc.list_clusters(session, actor)]}


@router.post("/clusters", status_code=201, responses=conditional.CREATE)
def create_cluster(
    body: ClusterIn, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.transaction() as session:
        c = svc.create_cluster(
            session,
            actor,
            body.name,
            description=body.description,
            access=body.access,
            kubeconfig=body.kubeconfig,
            context=body.context,
        )
        tagged(response, svc.tag(c))
        return svc.cluster_dict(c)


@router.get("/clusters/{cluster}", responses=conditional.READ)
def get_cluster(
    cluster: str, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.reading() as session:
        c = svc.get_cluster(session, actor, cluster)
        tagged(response, svc.tag(c))
        return svc.cluster_view(c, actor)


@router.patch("/clusters/{cluster}", responses=conditional.WRITE)
def update_cluster(
    cluster: str,
    body: ClusterPatch,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, cluster)
        c = kubeconfigs.update(session, actor, c, body.changes(), if_match=if_match)
        tagged(response, svc.tag(c))
        return svc.cluster_dict(c)


@router.delete("/clusters/{cluster}", status_code=204, responses=conditional.DELETE)
def delete_cluster(
    cluster: str, actor: ActorDep, server: ServerDep, if_match: IfMatchDep
) -> Response:
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, cluster)
        svc.delete_cluster(session, actor, c, if_match=if_match)
    return Response(status_code=204)


@router.get("/projects")
def list_projects(actor: ActorDep, server: ServerDep, cluster: str | None = None) -> dict[str, Any]:
    with server.reading() as session:
        c = svc.get_cluster(session, actor, cluster) if cluster else None
        return {"items": svc.list_projects(session, actor, c)}


@router.post("/projects", status_code=201, responses=conditional.CREATE)
def create_project(
    body: ProjectIn, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, body.cluster)
        p = svc.create_project(session, actor, c, body.name, body.description)
        tagged(response, svc.tag(p))
        return svc.project_dict(p, c.name)


@router.get("/projects/{project}", responses=conditional.READ)
def get_project(
    project: str, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.reading() as session:
        p = svc.get_project(session, actor, project)
        tagged(response, svc.tag(p))
        return svc.project_dict(p, svc.cluster_name(session, p.cluster_id))


@router.patch("/projects/{project}", responses=conditional.WRITE)
def update_project(
    project: str,
    body: ProjectPatch,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    with server.transaction() as session:
        p = svc.get_project(session, actor, project)
        changes = body.changes()
        p = svc.update_project(session, actor, p, changes, if_match=if_match)
        tagged(response, svc.tag(p))
        return svc.project_dict(p, svc.cluster_name(session, p.cluster_id))


@router.delete("/projects/{project}", status_code=204, responses=conditional.DELETE)
def delete_project(
    project: str, actor: ActorDep, server: ServerDep, if_match: IfMatchDep
) -> Response:
    with server.transaction() as session:
        p = svc.get_project(session, actor, project)
        svc.delete_project(session, actor, p, if_match=if_match)
    return Response(status_code=204)


@router.get("/clusters/{cluster}/namespaces")
def list_namespaces(
    cluster: str,
    actor: ActorDep,
    server: ServerDep,
    project: str | None = None,
    live: Annotated[
        bool,
        Query(
            description="Ask the cluster too: each namespace with its labels and in_cluster; "
            "when the cluster does not answer in a few seconds, the store's with a note."
        ),
    ] = False,
) -> dict[str, Any]:
    if live:
        return live_namespaces.list_live(server, actor, cluster, project)
    with server.reading() as session:
        c = svc.get_cluster(session, actor, cluster)
        p = svc.get_project(session, actor, project, c) if project else None
        return {"items": svc.list_namespaces(session, actor, c, p)}


@router.put("/clusters/{cluster}/namespaces/{name}")
def put_namespace(
    cluster: str, name: str, body: NamespaceIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """Register a namespace, with the project it belongs to (or none)."""
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, cluster)
        p = svc.get_project(session, actor, body.project, c) if body.project else None
        ns = svc.put_namespace(session, actor, c, name, p)
        return svc.namespace_dict(ns, c.name, p.name if p else None)


@router.delete("/clusters/{cluster}/namespaces/{name}", status_code=204)
def delete_namespace(cluster: str, name: str, actor: ActorDep, server: ServerDep) -> Response:
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, cluster)
        svc.delete_namespace(session, actor, svc.get_namespace(session, actor, c, name))
    return Response(status_code=204)


@router.get("/clusters/{cluster}/render")
def render(
    cluster: str,
    actor: ActorDep,
    server: ServerDep,
    namespace: str | None = None,
    project: str | None = None,
) -> Response:
    """The Secrets pullkeeper delivers, as manifests for GitOps; admins and project owners."""
    if namespace and project:
        raise Invalid("give namespace or project, not both", "namespace")
    hash_key = server.content_hash_key()  # before the transaction: it may write it first
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, cluster)
        ns = svc.get_namespace(session, actor, c, namespace) if namespace else None
        p = svc.get_project(session, actor, project, c) if project else None
        rendered = desired_state.render(
            session,
            actor,
            server.vault,
            hash_key,
            c,
            namespace=ns,
            project=p,
            excluded=server.settings.sync_excluded_namespaces,
        )
    return JSONResponse(rendered, headers={"Cache-Control": "no-store"})
