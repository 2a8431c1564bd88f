"""Test connection: whether the server reaches a cluster, the API server's version, and which
of the permissions pullkeeper needs there (the ClusterRole `pullkeeper webhook manifests`
prints) its account lacks."""

from __future__ import annotations

from typing import Any

from pullkeeper.core.webhook_manifests import CLUSTER_ROLE_RULES
from pullkeeper.kube.access_review import Permission, probe
from pullkeeper.kube.api import Access, KubeError
from pullkeeper.services import kubeconfigs
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden
from pullkeeper.services.server import Server
from pullkeeper.store.models import Cluster

__all__ = ["NEEDED", "test", "test_unsaved"]

NEEDED = tuple(
    Permission(group, resource, verb)
    for rule in CLUSTER_ROLE_RULES
    for group in rule["apiGroups"]
    for resource in rule["resources"]
    for verb in rule["verbs"]
)


def _result(access: Access) -> dict[str, Any]:
    try:
        found = probe(access, NEEDED)
    except KubeError as e:
        return {"reachable": False, "version": "", "missing": [], "error": e.message}
    return {
        "reachable": True,
        "version": found.version,
        "missing": [str(p) for p in found.missing],
        "error": "",
    }


def test(server: Server, actor: Actor, cluster: Cluster) -> dict[str, Any]:
    """Reach the cluster as the sync does; admins only (the answer may name server paths)."""
    if not actor.is_admin:
        raise Forbidden("only an admin can test a cluster's connection")
    try:
        access = kubeconfigs.access_of(server.vault, cluster)
    except KubeError as e:
        return {
            "cluster": cluster.name,
            "reachable": False,
            "version": "",
            "missing": [],
            "error": e.message,
        }
    return {"cluster": cluster.name, **_result(access)}


def test_unsaved(
    server: Server, actor: Actor, text: str, context: str = "", *, in_cluster: bool = False
) -> dict[str, Any]:
    """As test(), with access not saved yet: in-cluster, or a kubeconfig (checked as an
    upload is, and used from memory)."""
    if not actor.is_admin:
        raise Forbidden("only an admin can test a cluster's connection")
    if in_cluster:
        return {"cluster": "", **_result(Access(in_cluster=True))}
    _, config = kubeconfigs.checked(text, context)
    return {"cluster": "", **_result(Access(config=config))}
