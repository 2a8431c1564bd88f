"""The admission webhook's in-memory index of the store.

The index holds, per cluster and namespace, the effective policy and a keyring
of the delivered Secrets' registries (names only, never a secret), so a
request costs no database query. It is rebuilt when this process writes to
the store and, for other processes' writes, when the audit trail's newest id
changes (polled every `admission_refresh_seconds`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pullkeeper.core import keyring
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.policy import Policy
from pullkeeper.core.reference import InvalidReference, parse_normalized_named
from pullkeeper.services.credentials import effective_rows
from pullkeeper.services.policies import value_of
from pullkeeper.services.server import Server
from pullkeeper.store.models import AuditEvent, Cluster, Namespace
from pullkeeper.store.models import Policy as PolicyRow

__all__ = ["ClusterView", "Index", "NamespaceView"]

_log = logging.getLogger("pullkeeper.admission")


@dataclass(slots=True)
class NamespaceView:
    policy: Policy
    keyring: keyring.Keyring

    def secrets_for(self, image: str) -> list[str]:
        try:
            name = parse_normalized_named(image).name
        except InvalidReference:
            return []
        return list(dict.fromkeys(c.source for c in self.keyring.lookup(name)))


@dataclass(slots=True)
class ClusterView:
    name: str
    id: str = ""
    namespaces: dict[str, NamespaceView] = field(default_factory=dict)
    # For a namespace the store does not know: cluster-wide credentials, the cluster policy.
    fallback: NamespaceView = field(
        default_factory=lambda: NamespaceView(Policy(), keyring.Keyring())
    )

    def view(self, namespace: str) -> NamespaceView:
        return self.namespaces.get(namespace, self.fallback)


def _build(session: Session) -> dict[str, ClusterView]:
    """Every cluster's view, by cluster name and id."""
    out: dict[str, ClusterView] = {}
    policies = {
        (p.cluster_id, p.project_id): value_of(p) for p in session.scalars(select(PolicyRow))
    }
    for cluster in session.scalars(select(Cluster)):
        cluster_policy = policies.get((cluster.id, None), Policy())
        rows = effective_rows(session, cluster.id)
        wide = [r for r in rows if r.scope == "cluster"]
        by_project: dict[str, list[Any]] = {}
        by_namespace: dict[str, list[Any]] = {}
        for r in rows:
            if r.scope == "project":
                by_project.setdefault(r.project_id, []).append(r)
            elif r.scope == "namespace":
                by_namespace.setdefault(r.namespace, []).append(r)
        view = ClusterView(cluster.name, cluster.id)
        view.fallback = NamespaceView(cluster_policy, _keyring(wide))
        known = session.execute(
            select(Namespace.name, Namespace.project_id).where(Namespace.cluster_id == cluster.id)
        )
        for name, project_id in known:
            own = policies.get((cluster.id, project_id)) if project_id else None
            from_project = by_project.get(project_id, []) if project_id else []
            creds = by_namespace.get(name, []) + from_project + wide
            view.namespaces[name] = NamespaceView(
                (own or Policy()).over(cluster_policy), _keyring(creds)
            )
        out[cluster.name] = view
        out[cluster.id] = view
    return out


def _keyring(rows: list[Any]) -> keyring.Keyring:
    ring = keyring.Keyring()
    for r in rows:  # namespace, project, then cluster scope: the Secrets' order
        ring.add([(r.server, AuthEntry(r.username))], r.name)
    return ring


class Index:
    """The views, rebuilt from the store when it changes; thread-safe to read."""

    def __init__(self, server: Server, refresh_seconds: float) -> None:
        self.server, self.refresh_seconds = server, refresh_seconds
        self.ready = threading.Event()
        self.builds = 0
        self._views: dict[str, ClusterView] = {}
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._revision = -1
        self._thread = threading.Thread(target=self._run, name="admission-index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        self._thread.join(5)

    def changed(self) -> None:
        self._changed.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh(force=self._changed.is_set())
            except Exception:  # the store may be briefly unreachable: keep the last index
                _log.exception("admission: cannot rebuild the index")
            self._changed.wait(self.refresh_seconds)
            self._changed.clear()

    def refresh(self, force: bool = False) -> None:
        with self.server.reading() as session:
            revision = int(session.scalar(select(func.max(AuditEvent.id))) or 0)
            if not force and revision == self._revision:
                return
            views = _build(session)
        self._views, self._revision = views, revision
        self.builds += 1
        self.ready.set()

    @property
    def revision(self) -> int:
        """The audit trail's newest id when the index was last built."""
        return self._revision

    def cluster(self, ref: str | None) -> ClusterView | None:
        views = self._views
        if ref:
            return views.get(ref)
        distinct = {id(v): v for v in views.values()}
        return next(iter(distinct.values())) if len(distinct) == 1 else None
