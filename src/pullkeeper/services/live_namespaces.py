"""A cluster's namespaces as they are in the cluster now: each with its labels and the
project the store puts it in, beside the namespaces the store knows that the cluster does
not have. What the pickers and the project page offer.

The cluster is asked once, with a short timeout, and no transaction open. When it cannot
be reached, the answer is what the store knows, with a note that says so.
"""

from __future__ import annotations

from typing import Any

from pullkeeper.kube.api import Access, ClusterAPI, KubeError
from pullkeeper.services import clusters
from pullkeeper.services.actor import Actor
from pullkeeper.services.server import Server

__all__ = ["TIMEOUT", "list_live"]

# A picker waits no longer than this for the cluster before offering what the store knows.
TIMEOUT = 3.0


def _live(access: Access, timeout: float) -> list[dict[str, Any]]:
    api = ClusterAPI(access, timeout=timeout)
    try:
        found, _ = api.list_namespaces()
    finally:
        api.close()
    return found


def _note(actor: Actor, cluster: str, e: KubeError) -> str:
    # The reason may name files on the server: only an admin, who can fix them, reads it.
    said = f"Cluster {cluster} could not be reached just now"
    if actor.is_admin:
        said += f" ({e.message})"
    return said + "; these are the namespaces pullkeeper knows of, which may be out of date."


def list_live(
    server: Server,
    actor: Actor,
    cluster_ref: str,
    project_ref: str | None = None,
    *,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """{"items": [...], "live": whether the cluster answered, "note": why not}. Each item:
    name, labels, project_id, project, in_cluster (False: only the store knows it; None:
    the cluster did not answer) and the store's id (None for a namespace the store does not
    know yet). Members see their projects' namespaces; admins and viewers every one; a
    project narrows to its own."""
    with server.reading() as session:
        cluster = clusters.get_cluster(session, actor, cluster_ref)
        project = (
            clusters.get_project(session, actor, project_ref, cluster) if project_ref else None
        )
        known = {n["name"]: n for n in clusters.list_namespaces(session, actor, cluster, project)}
        name = cluster.name
        access = Access(cluster.access == "in-cluster", cluster.kubeconfig or "", cluster.context)
    note, live = "", True
    try:
        found = _live(access, timeout)
    except KubeError as e:
        found, live, note = [], False, _note(actor, name, e)
    items: list[dict[str, Any]] = []
    for obj in found:
        meta = obj.get("metadata") or {}
        stored = known.pop(meta.get("name", ""), None)
        if stored is None and (project is not None or not actor.sees_everything):
            continue  # in no project the actor sees (or not in the one asked for)
        items.append(_item(meta["name"], name, stored, dict(meta.get("labels") or {}), True))
    # Without an answer, whether the cluster has them is not known (None).
    items += [_item(n, name, stored, {}, False if live else None) for n, stored in known.items()]
    items.sort(key=lambda i: i["name"])
    return {"items": items, "live": live, "note": note}


def _item(
    name: str,
    cluster: str,
    stored: dict[str, Any] | None,
    labels: dict[str, str],
    present: bool | None,
) -> dict[str, Any]:
    return {
        "id": stored["id"] if stored else None,
        "name": name,
        "cluster": cluster,
        "project_id": stored["project_id"] if stored else None,
        "project": stored["project"] if stored else None,
        "labels": labels,
        "in_cluster": present,
    }
