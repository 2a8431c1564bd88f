"""A cluster's access, as the Clusters page sees it: an uploaded kubeconfig, Test connection,
and where its delivered Secrets stand (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pullkeeper.api import conditional
from pullkeeper.api.conditional import IfMatchDep, tagged
from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.services import cluster_connection, kubeconfigs
from pullkeeper.services import clusters as svc
from pullkeeper.services.errors import Forbidden
from pullkeeper.services.schemas import KubeconfigIn
from pullkeeper.services.sync.statuses import cluster_state

router = APIRouter(tags=["clusters"])


@router.put("/clusters/{cluster}/kubeconfig", responses=conditional.WRITE)
def put_kubeconfig(
    cluster: str,
    body: KubeconfigIn,
    actor: ActorDep,
    server: ServerDep,
    if_match: IfMatchDep,
    response: Response,
) -> dict[str, Any]:
    """Reach the cluster with this kubeconfig: the server keeps its given context (else its
    current-context), that context's cluster and user, encrypted in its store (replacing the
    access it had). Refused when any user runs a command (`exec`), uses an `auth-provider`,
    or the file names files of its machine."""
    with server.transaction() as session:
        c = svc.get_cluster(session, actor, cluster)
        c = kubeconfigs.replace(
            server, session, actor, c, body.content, context=body.context, if_match=if_match
        )
        tagged(response, svc.tag(c))
        return svc.cluster_dict(c)


@router.post("/clusters/{cluster}/test")
def test_connection(cluster: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """Reach the cluster as the sync does: `reachable`, the API server's `version`, and the
    permissions pullkeeper needs there that its account lacks (`missing`, as "verb
    resource[.group]"); `error` says why it could not connect."""
    with server.reading() as session:
        c = svc.get_cluster(session, actor, cluster)
    return cluster_connection.test(server, actor, c)


@router.get("/clusters/{cluster}/sync")
def sync_state(cluster: str, actor: ActorDep, server: ServerDep) -> dict[str, Any]:
    """How many of the cluster's delivered Secrets are in each state (in_sync, pending,
    conflict, error), and why the cluster cannot be synced, if it cannot (admins)."""
    if not actor.is_admin:
        raise Forbidden("only an admin can see a cluster's sync state")
    with server.reading() as session:
        c = svc.get_cluster(session, actor, cluster)
    return {"cluster": c.name, **cluster_state(server, c.id, show_paths=True)}
