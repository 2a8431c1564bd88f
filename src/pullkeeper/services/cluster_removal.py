"""What deleting a cluster takes with it, counted from the store for the confirmation.

delete_cluster (services/clusters.py) deletes the cluster's row; the store's foreign keys
(ON DELETE CASCADE) take everything below with it. Nothing in the cluster itself is
touched: the sync stops, and the Secrets it delivered stay where they are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pullkeeper.store.models import (
    NODE_TOKEN,
    ApiToken,
    Cluster,
    Credential,
    Namespace,
    NodeProfile,
    Policy,
    Project,
)

__all__ = ["what_goes"]


def _count(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def what_goes(session: Session, cluster: Cluster) -> dict[str, Any]:
    """The cluster's projects (names), and how many namespaces, credentials, policies, node
    profiles and unrevoked node tokens go with it."""
    projects = list(
        session.scalars(
            select(Project.name).where(Project.cluster_id == cluster.id).order_by(Project.name)
        )
    )
    return {
        "projects": projects,
        "namespaces": _count(session, Namespace, Namespace.cluster_id == cluster.id),
        "credentials": _count(session, Credential, Credential.cluster_id == cluster.id),
        "policies": _count(session, Policy, Policy.cluster_id == cluster.id),
        "node_profiles": _count(session, NodeProfile, NodeProfile.cluster_id == cluster.id),
        "node_tokens": _count(
            session,
            ApiToken,
            ApiToken.cluster_id == cluster.id,
            ApiToken.kind == NODE_TOKEN,
            ApiToken.revoked_at.is_(None),
        ),
    }
