"""Workloads deployed with exactly the pull secrets their images need; their rollout; attach."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.services import workloads as svc
from pullkeeper.services.schemas import WorkloadIn

router = APIRouter(tags=["workloads"])


_BASE = "/clusters/{cluster}/namespaces/{namespace}/workloads"


@router.post(_BASE, status_code=201)
def deploy(
    cluster: str, namespace: str, body: WorkloadIn, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """Create a Deployment whose pods carry exactly the Secrets the kubelet would use for its
    images; owners and members of the namespace's project, and admins. Audited."""
    containers = body.to_containers()
    return svc.deploy(server, actor, cluster, namespace, body.name, containers, body.replicas)


@router.get(_BASE + "/{name}")
def workload_status(
    cluster: str,
    namespace: str,
    name: str,
    actor: ActorDep,
    server: ServerDep,
    diagnose: bool = Query(True, description="Check a failed pull's image with the registry."),
) -> dict[str, Any]:
    """A Deployment's rollout: replicas, conditions, pods, events, and why a pull failed."""
    return svc.status(server, actor, cluster, namespace, name, diagnose=diagnose)


@router.post(_BASE + "/{kind}/{name}/attach")
def attach(
    cluster: str, namespace: str, kind: str, name: str, actor: ActorDep, server: ServerDep
) -> dict[str, Any]:
    """Add the matching imagePullSecrets a Deployment, StatefulSet or DaemonSet lacks; every
    entry it has stays in its place, and nothing is written when nothing is missing."""
    return svc.attach(server, actor, cluster, namespace, kind, name)


@router.get("/credentials/{credential_id}/workloads")
def naming_secret(
    credential_id: str,
    actor: ActorDep,
    server: ServerDep,
    secret: str | None = Query(
        None,
        description="The Secret's name (default: the credential's); an old name after a "
        "rename finds the workloads that still name it.",
    ),
) -> dict[str, Any]:
    """The Deployments, StatefulSets and DaemonSets, in the namespaces the credential reaches,
    whose pods name the Secret; `attach` gives one the credential's current Secret."""
    return svc.naming_secret(server, actor, credential_id, secret)


@router.get("/workloads")
def listing(
    actor: ActorDep,
    server: ServerDep,
    cluster: str = Query("", description="Cluster name or id (may be left out with one)."),
    namespace: str = Query("", description="Only this namespace's workloads."),
    project: str = Query("", description="Only the workloads of this project's namespaces."),
    credential: str = Query(
        "", description="Only those naming this credential's Secret, where it reaches."
    ),
) -> dict[str, Any]:
    """The Deployments, StatefulSets and DaemonSets of the namespaces the caller sees, each
    with its pull state (pulled, pulling, pull failed with the kubelet's reason, not on a
    node, no pods)."""
    return svc.listing(
        server,
        actor,
        cluster=cluster,
        namespace=namespace,
        project=project,
        credential=credential,
    )
