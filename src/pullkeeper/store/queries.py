"""Lookups the use cases share, so each is written once and reads as what it finds."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.store.models import Cluster, Namespace, RoleBinding, User

__all__ = ["lock_cluster", "namespace_named", "role_binding", "user_named"]


def user_named(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def role_binding(session: Session, user_id: str, project_id: str) -> RoleBinding | None:
    """A user's role in a project, if any."""
    return session.scalar(
        select(RoleBinding).where(
            RoleBinding.user_id == user_id, RoleBinding.project_id == project_id
        )
    )


def namespace_named(session: Session, cluster_id: str, name: str) -> Namespace | None:
    """The store's record of a namespace, whatever project it is in."""
    return session.scalar(
        select(Namespace).where(Namespace.cluster_id == cluster_id, Namespace.name == name)
    )


def lock_cluster(session: Session, cluster_id: str) -> None:
    """Take the cluster's row lock: writes that must not interleave on one cluster (a new
    namespace, a policy, a credential name) queue here until the transaction ends. SQLite
    has one writer anyway; PostgreSQL needs the lock."""
    session.execute(select(Cluster.id).where(Cluster.id == cluster_id).with_for_update())
