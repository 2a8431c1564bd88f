"""Registry policy of clusters and projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.api.schemas import PolicyIn
from pullkeeper.services import clusters
from pullkeeper.services import policies as svc

router = APIRouter(tags=["policies"])


@router.get("/clusters/{cluster}/policy")
def get_cluster_policy(cluster: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    with server.reading() as session:
        c = clusters.get_cluster(session, actor, cluster)
        return svc.as_dict(svc.get(session, c, None))


@router.put("/clusters/{cluster}/policy")
def put_cluster_policy(
    cluster: str, body: PolicyIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """Set fields of the cluster's policy; null makes a field unset."""
    with server.transaction() as session:
        c = clusters.get_cluster(session, actor, cluster)
        return svc.as_dict(svc.put(session, actor, c, None, body.model_dump(exclude_unset=True)))


@router.get("/projects/{project}/policy")
def get_project_policy(
    project: str, actor: ActorDep, server: ServerDep, effective: bool = False
) -> dict[str, Any]:
    """The project's own policy, or with effective=true merged over its cluster's."""
    with server.reading() as session:
        p = clusters.get_project(session, actor, project)
        c = clusters.get_cluster(session, actor, p.cluster_id)
        value = svc.effective(session, c, p) if effective else svc.get(session, c, p)
        return svc.as_dict(value)


@router.put("/projects/{project}/policy")
def put_project_policy(
    project: str, body: PolicyIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    with server.transaction() as session:
        p = clusters.get_project(session, actor, project)
        c = clusters.get_cluster(session, actor, p.cluster_id)
        return svc.as_dict(svc.put(session, actor, c, p, body.model_dump(exclude_unset=True)))
