"""The store's record of the namespaces the sync finds in a cluster: each known by name,
in the project its label names, every change audited as the sync's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.core import delivery
from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.server import Server
from pullkeeper.store import changes
from pullkeeper.store.models import Namespace, Project
from pullkeeper.store.queries import namespace_named

__all__ = ["Recorded", "record_namespaces", "revision", "unrecord_namespace"]

_SYNC = Actor(user_id="", username="sync", is_admin=True, source="sync")


def revision(session: Session) -> int:
    """The store's revision for the sync: the change log's newest id of the kinds desired
    state is made of (an audit row or a check's result moves none)."""
    return changes.newest(session, changes.SYNC_KINDS)


@dataclass(frozen=True, slots=True)
class Recorded:
    """The change-log rows one write made: the revisions before and after it, and how many."""

    before: int = -1
    after: int = -1
    count: int = 0


def record_namespaces(
    server: Server, cluster_id: str, cluster_name: str, seen: Iterable[delivery.Namespace]
) -> Recorded:
    """Namespaces found in the cluster become known to the store, with the project their
    label names; a label moving a namespace to another project moves it in the store."""
    seen = list(seen)
    if not seen:
        return Recorded()
    written = 0
    with server.transaction() as session:
        before = revision(session)
        by_name = {
            p.name: p.id
            for p in session.execute(
                select(Project.id, Project.name).where(Project.cluster_id == cluster_id)
            )
        }
        rows = {
            n.name: n
            for n in session.scalars(
                select(Namespace).where(
                    Namespace.cluster_id == cluster_id,
                    Namespace.name.in_([s.name for s in seen]),
                )
            )
        }
        for ns in seen:
            labelled = delivery.project_of(delivery.Namespace(ns.name, ns.labels), by_name)
            row = rows.get(ns.name)
            project_id = by_name.get(labelled) if labelled else None
            if row is None:
                row = Namespace(
                    cluster_id=cluster_id,
                    name=ns.name,
                    project_id=project_id,
                    created_by=_SYNC.username,
                    updated_by=_SYNC.username,
                )
                session.add(row)
                session.flush()
                action = "namespace.discover"
            elif project_id is not None and row.project_id != project_id:
                row.project_id = project_id
                row.updated_by = _SYNC.username
                action = "namespace.relabel"
            else:
                continue
            audit.record(
                session,
                _SYNC,
                action,
                "namespace",
                row.id,
                project_id=row.project_id,
                after={"cluster": cluster_name, "name": ns.name},
            )
            written += 1
        session.flush()
        ours = len(changes.pending(session))
    if not written:
        return Recorded()
    return Recorded(before, _revision(server), ours)


def unrecord_namespace(server: Server, cluster_id: str, cluster_name: str, name: str) -> Recorded:
    """The namespace lost the label that put it in a project: so does its record."""
    with server.transaction() as session:
        before = revision(session)
        row = namespace_named(session, cluster_id, name)
        if row is None or row.project_id is None:
            return Recorded()
        old = {"project_id": row.project_id}
        row.project_id, row.updated_by = None, _SYNC.username
        audit.record(
            session,
            _SYNC,
            "namespace.relabel",
            "namespace",
            row.id,
            before=old,
            after={"cluster": cluster_name, "name": name, "project_id": None},
        )
        session.flush()
        ours = len(changes.pending(session))
    return Recorded(before, _revision(server), ours)


def _revision(server: Server) -> int:
    # The log's rows are written at the commit: read after it.
    with server.reading() as session:
        return revision(session)
