"""Registry policy of clusters and projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pullkeeper.api import conditional
from pullkeeper.api.conditional import IfMatchDep, tagged
from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.core.etag import IfMatch
from pullkeeper.services import policies as svc
from pullkeeper.services.actor import Actor
from pullkeeper.services.schemas import PolicyIn
from pullkeeper.services.server import Server

router = APIRouter(tags=["policies"])


def _get(
    server: Server, actor: Actor, response: Response, *, cluster: str = "", project: str = ""
) -> dict[str, Any]:
    with server.reading() as session:
        c, p = svc.addressed(session, actor, cluster=cluster, project=project)
        tagged(response, svc.tag(session, c, p))
        return svc.as_dict(svc.get(session, c, p))


def _put(
    server: Server,
    actor: Actor,
    body: PolicyIn,
    if_match: IfMatch | None,
    response: Response,
    *,
    cluster: str = "",
    project: str = "",
) -> dict[str, Any]:
    with server.transaction() as session:
        c, p = svc.addressed(session, actor, cluster=cluster, project=project)
        values = body.model_dump(exclude_unset=True)
        policy = svc.put(session, actor, c, p, values, if_match=if_match)
        tagged(response, svc.tag(session, c, p))
        return svc.as_dict(policy)


@router.get("/clusters/{cluster}/policy", responses=conditional.READ)
def get_cluster_policy(
    cluster: str, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    return _get(server, actor, response, cluster=cluster)


@router.put("/clusters/{cluster}/policy", responses=conditional.WRITE)
def put_cluster_policy(
    cluster: str,
    body: PolicyIn,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Set fields of the cluster's policy; null makes a field unset."""
    return _put(server, actor, body, if_match, response, cluster=cluster)


@router.get("/projects/{project}/policy", responses=conditional.READ)
def get_project_policy(
    project: str, actor: ActorDep, server: ServerDep, response: Response, effective: bool = False
) -> dict[str, Any]:
    """The project's own policy, or with effective=true merged over its cluster's (that view
    is not written, so it carries no ETag)."""
    if not effective:
        return _get(server, actor, response, project=project)
    with server.reading() as session:
        c, p = svc.addressed(session, actor, project=project)
        return svc.as_dict(svc.effective(session, c, p))


@router.put("/projects/{project}/policy", responses=conditional.WRITE)
def put_project_policy(
    project: str,
    body: PolicyIn,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    return _put(server, actor, body, if_match, response, project=project)
