"""Registry policy of clusters and projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pullkeeper.api import conditional
from pullkeeper.api.conditional import IfMatchDep, tagged
from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.services import clusters
from pullkeeper.services import policies as svc
from pullkeeper.services.schemas import PolicyIn

router = APIRouter(tags=["policies"])


@router.get("/clusters/{cluster}/policy", responses=conditional.READ)
def get_cluster_policy(
    cluster: str, actor: ActorDep, server: ServerDep, response: Response
) -> dict[str, Any]:
    with server.reading() as session:
        c = clusters.get_cluster(session, actor, cluster)
        tagged(response, svc.tag(session, c, None))
        return svc.as_dict(svc.get(session, c, None))


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
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        values = body.model_dump(exclude_unset=True)
        policy = svc.put(session, actor, c, None, values, if_match=if_match)
        tagged(response, svc.tag(session, c, None))
        return svc.as_dict(policy)


@router.get("/projects/{project}/policy", responses=conditional.READ)
def get_project_policy(
    project: str, actor: ActorDep, server: ServerDep, response: Response, effective: bool = False
) -> dict[str, Any]:
    """The project's own policy, or with effective=true merged over its cluster's (that view
    is not written, so it carries no ETag)."""
    with server.reading() as session:
        p = clusters.get_project(session, actor, project)
        c = clusters.get_cluster(session, actor, p.cluster_id)
        if effective:
            return svc.as_dict(svc.effective(session, c, p))
        tagged(response, svc.tag(session, c, p))
        return svc.as_dict(svc.get(session, c, p))


@router.put("/projects/{project}/policy", responses=conditional.WRITE)
def put_project_policy(
    project: str,
    body: PolicyIn,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    with server.transaction() as session:
        p = clusters.get_project(session, actor, project)
        c = clusters.get_cluster(session, actor, p.cluster_id)
        values = body.model_dump(exclude_unset=True)
        policy = svc.put(session, actor, c, p, values, if_match=if_match)
        tagged(response, svc.tag(session, c, p))
        return svc.as_dict(policy)
