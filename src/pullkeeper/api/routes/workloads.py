"""Workloads deployed with exactly the pull secrets their images need; their rollout; attach."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from pullkeeper.api.deps import ActorDep, ServerDep
from pullkeeper.api.schemas import Body
from pullkeeper.core.workloads import Container
from pullkeeper.services import workloads as svc
from pullkeeper.services.errors import Invalid

router = APIRouter(tags=["workloads"])


class ContainerIn(Body):
    name: str | None = Field(None, max_length=63, description="Default: the workload's name.")
    image: str = Field(max_length=1024)
    port: int | None = Field(None, ge=1, le=65535, description="A containerPort (TCP).")


class WorkloadIn(Body):
    name: str = Field(max_length=63, description="The Deployment's name; its pods get app=NAME.")
    image: str | None = Field(None, max_length=1024, description="One container's image.")
    port: int | None = Field(None, ge=1, le=65535, description="With image: its containerPort.")
    containers: list[ContainerIn] | None = Field(
        None, max_length=32, description="Several containers, instead of image."
    )
    replicas: int = Field(1, ge=0, le=svc.MAX_REPLICAS)

    def to_containers(self) -> list[Container]:
        if (self.image is None) == (self.containers is None):
            raise Invalid("give image, or containers, but not both", "image")
        if self.image is not None:
            return [Container(self.name, self.image, self.port)]
        if self.port is not None:
            raise Invalid("port goes with image; give each container its own port", "port")
        return [
            Container(c.name or (self.name if i == 0 else f"{self.name}-{i}"), c.image, c.port)
            for i, c in enumerate(self.containers or [])
        ]


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
