"""The admission webhook's in-memory index of the store, kept current change by change.

The index holds, per cluster and namespace, the effective policy and a keyring
of the delivered Secrets' registries (names only, never a secret), so a
request costs no database query.

A namespace's keyring is layered (core/keyring.py LayeredKeyring): its own
namespace-scoped credentials, its project's, the cluster's, each layer built
once and shared by every namespace it reaches. The index is built in full when
it starts; after that it follows the typed changes (store/changes.py) of the
change log, its own process's as soon as they commit (the server tells it) and
other processes' by polling the log every `admission_refresh_seconds`. A change
rebuilds only the layers and views it touches: a namespace-scoped credential
one namespace, a project-scoped one or a project's policy that project's
namespaces, a cluster-scoped one or the cluster policy the cluster's (its
layer once, then every view); a cluster added, renamed or deleted is reloaded
or dropped whole. Supersession is per scope and address, so reloading a
scope's effective credentials keeps it exact.

Updates run in the index's own thread, never on a request: each one builds new
views and publishes them with one assignment, so a reader sees a namespace's
old view or its new one. A full rebuild happens at start, when the log was
pruned past this index's revision (it fell behind), for a bulk change whose
extent is unknown, and as the periodic check (`admission_check_seconds`): a
fresh build compared with the incremental state; a difference is logged
(cluster and namespace names only), counted, and the fresh build kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from pullkeeper.core import keyring
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.policy import Policy
from pullkeeper.core.reference import InvalidReference, parse_normalized_named
from pullkeeper.services.credentials import effective_rows
from pullkeeper.services.policies import value_of
from pullkeeper.services.server import Server
from pullkeeper.store import changes
from pullkeeper.store.changes import INDEX_KINDS, Change
from pullkeeper.store.models import Cluster, Credential, Namespace
from pullkeeper.store.models import Policy as PolicyRow

__all__ = ["ClusterView", "Index", "NamespaceView"]

_log = logging.getLogger("pullkeeper.admission")

_MANY = 100  # more changes than this to one cluster at once: it is reloaded whole


class _Ring(keyring.Keyring):
    """One scope's keyring, and what it holds (server, user name, Secret name), sorted: what
    a comparison with a fresh build looks at."""

    def __init__(self, rows: Iterable[Any]) -> None:
        super().__init__()
        self.signature = tuple(sorted((r.server, r.username, r.name) for r in rows))
        # One effective credential per address in a scope (supersession), so the order
        # within a layer never changes a lookup's answer.
        for server, username, name in self.signature:
            self.add([(server, AuthEntry(username))], name)


# Answers a view keeps, by image: a namespace's pods use a handful of images.
_ANSWERS_KEPT = 256


@dataclass(slots=True)
class NamespaceView:
    policy: Policy
    keyring: keyring.LayeredKeyring
    # A view is never changed once published (a change publishes a new one), so its
    # answers can be kept: a lookup parses the image and its registry as URLs each time.
    answers: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def secrets_for(self, image: str) -> list[str]:
        found = self.answers.get(image)
        if found is None:
            try:
                name = parse_normalized_named(image).name
            except InvalidReference:
                return []
            found = tuple(dict.fromkeys(c.source for c in self.keyring.lookup(name)))
            if len(self.answers) < _ANSWERS_KEPT:
                self.answers[image] = found
        return list(found)

    def signature(self) -> tuple[Policy, tuple[Any, ...]]:
        layers = self.keyring.layers
        return self.policy, tuple(r.signature for r in layers if isinstance(r, _Ring))


@dataclass(slots=True)
class ClusterView:
    name: str
    id: str = ""
    namespaces: dict[str, NamespaceView] = field(default_factory=dict)
    # For a namespace the store does not know: cluster-wide credentials, the cluster policy.
    fallback: NamespaceView = field(
        default_factory=lambda: NamespaceView(Policy(), keyring.LayeredKeyring(()))
    )

    def view(self, namespace: str) -> NamespaceView:
        return self.namespaces.get(namespace, self.fallback)


@dataclass(slots=True)
class _ClusterState:
    """A cluster as the index holds it: its policies and one keyring per scope (empty ones
    left out), from which its views are made. Only the index's thread touches it."""

    id: str
    name: str
    policy: Policy = field(default_factory=Policy)
    wide: _Ring | None = None
    project_policies: dict[str, Policy] = field(default_factory=dict)
    project_rings: dict[str, _Ring] = field(default_factory=dict)
    namespace_rings: dict[str, _Ring] = field(default_factory=dict)
    namespaces: dict[str, str | None] = field(default_factory=dict)  # name -> project id

    def in_project(self, project_id: str) -> set[str]:
        return {n for n, p in self.namespaces.items() if p == project_id}

    def views(self, old: ClusterView | None, redo: Set[str] | None) -> ClusterView:
        """The cluster's views: those in `redo` made anew, the others kept (all: None)."""
        merged: dict[str | None, Policy] = {}
        fallback = NamespaceView(self.policy, keyring.LayeredKeyring(_present(self.wide)))
        if old is None or redo is None:
            names: Iterable[str] = self.namespaces
            namespaces: dict[str, NamespaceView] = {}
        else:
            names, namespaces, fallback = redo, dict(old.namespaces), old.fallback
        for name in names:
            if name not in self.namespaces:
                namespaces.pop(name, None)
                continue
            project_id = self.namespaces[name]
            policy = merged.get(project_id)
            if policy is None:
                own = self.project_policies.get(project_id) if project_id else None
                policy = merged[project_id] = (own or Policy()).over(self.policy)
            layers = _present(
                self.namespace_rings.get(name),
                self.project_rings.get(project_id) if project_id else None,
                self.wide,
            )
            namespaces[name] = NamespaceView(policy, keyring.LayeredKeyring(layers))
        return ClusterView(self.name, self.id, namespaces, fallback)


def _present(*rings: _Ring | None) -> list[_Ring]:
    """The layers worth looking in, narrowest scope first: the Secrets' order in a pod."""
    return [r for r in rings if r is not None and len(r)]


def _kept(rings: dict[str, _Ring], key: str, ring: _Ring) -> None:
    if len(ring):
        rings[key] = ring
    else:
        rings.pop(key, None)


def _scope_ring(session: Session, cluster_id: str, *where: ColumnElement[bool]) -> _Ring:
    return _Ring(effective_rows(session, cluster_id, *where))


def _wide(session: Session, cluster_id: str) -> _Ring | None:
    ring = _scope_ring(session, cluster_id, Credential.scope == "cluster")
    return ring if len(ring) else None


def _project_ring(session: Session, cluster_id: str, project_id: str) -> _Ring:
    where = and_(Credential.scope == "project", Credential.project_id == project_id)
    return _scope_ring(session, cluster_id, where)


def _namespace_ring(session: Session, cluster_id: str, name: str) -> _Ring:
    where = and_(Credential.scope == "namespace", Credential.namespace == name)
    return _scope_ring(session, cluster_id, where)


def _policy(session: Session, cluster_id: str, project_id: str | None) -> PolicyRow | None:
    return session.scalar(
        select(PolicyRow).where(
            PolicyRow.cluster_id == cluster_id,
            PolicyRow.project_id.is_(None)
            if project_id is None
            else PolicyRow.project_id == project_id,
        )
    )


def _namespaces(session: Session, cluster_id: str) -> dict[str, str | None]:
    rows = session.execute(
        select(Namespace.name, Namespace.project_id).where(Namespace.cluster_id == cluster_id)
    )
    return {name: project_id for name, project_id in rows}


def _load(session: Session, cluster: Cluster) -> _ClusterState:
    """One cluster, read in full."""
    state = _ClusterState(cluster.id, cluster.name)
    for p in session.scalars(select(PolicyRow).where(PolicyRow.cluster_id == cluster.id)):
        if p.project_id is None:
            state.policy = value_of(p)
        else:
            state.project_policies[p.project_id] = value_of(p)
    by_project: dict[str, list[Any]] = {}
    by_namespace: dict[str, list[Any]] = {}
    wide: list[Any] = []
    for r in effective_rows(session, cluster.id):
        if r.scope == "project":
            by_project.setdefault(r.project_id, []).append(r)
        elif r.scope == "namespace":
            by_namespace.setdefault(r.namespace, []).append(r)
        else:
            wide.append(r)
    state.wide = _Ring(wide) if wide else None
    state.project_rings = {p: _Ring(rows) for p, rows in by_project.items()}
    state.namespaces = _namespaces(session, cluster.id)
    state.namespace_rings = {
        n: _Ring(rows) for n, rows in by_namespace.items() if n in state.namespaces
    }
    return state


def _build(session: Session) -> dict[str, _ClusterState]:
    """Every cluster, read in full, by id."""
    return {c.id: _load(session, c) for c in session.scalars(select(Cluster))}


def _apply(session: Session, state: _ClusterState, found: list[Change]) -> set[str] | None:
    """Bring a cluster's state up to the store for these changes (each placeable); the
    namespaces whose views they touch (None: all)."""
    cid, everything = state.id, False
    redo: set[str] = set()
    if any(c.kind in ("namespace", "project") for c in found):
        # Namespaces added, removed or moved; a deleted project's are left in none (the
        # store's cascades, which no session sees, as they take its credentials and policy).
        before, state.namespaces = state.namespaces, _namespaces(session, cid)
        redo |= _moved(before, state.namespaces)
        for gone in before.keys() - state.namespaces.keys():
            state.namespace_rings.pop(gone, None)
    for c in found:
        if c.namespace is not None:  # a namespace, or a credential of one
            if c.namespace in state.namespaces:
                ring = _namespace_ring(session, cid, c.namespace)
                _kept(state.namespace_rings, c.namespace, ring)
            redo.add(c.namespace)
        elif c.project_id is None:  # a cluster-scoped credential, the cluster policy
            if c.kind == "credential":
                state.wide = _wide(session, cid)
            else:
                state.policy = value_of(_policy(session, cid, None))
            everything = True
        else:  # a project, its policy, a credential of its scope
            pid = c.project_id
            if c.kind in ("credential", "project"):
                _kept(state.project_rings, pid, _project_ring(session, cid, pid))
            if c.kind in ("policy", "project"):
                row = _policy(session, cid, pid)
                if row is None:
                    state.project_policies.pop(pid, None)
                else:
                    state.project_policies[pid] = value_of(row)
            redo |= state.in_project(pid)
    return None if everything else redo


def _placeable(c: Change) -> bool:
    """Whether a change says which layers it touches (else its cluster is reloaded)."""
    if c.kind == "namespace":
        return c.namespace is not None
    if c.kind == "project":
        return c.project_id is not None and c.namespace is None
    return c.kind in ("credential", "policy")


def _moved(before: dict[str, str | None], after: dict[str, str | None]) -> set[str]:
    """Namespaces added, removed or moved to another project."""
    return {n for n in before.keys() | after.keys() if before.get(n, "") != after.get(n, "")}


def _signature(views: dict[str, ClusterView]) -> dict[str, Any]:
    """What a comparison of two indexes looks at, by cluster id: every view's policy and
    layers (servers, user names and Secret names: never a secret)."""
    return {
        v.id: (
            v.name,
            v.fallback.signature(),
            {name: view.signature() for name, view in v.namespaces.items()},
        )
        for v in views.values()
    }


class Index:
    """The views, kept current from the store's typed changes; thread-safe to read."""

    def __init__(
        self, server: Server, refresh_seconds: float, check_seconds: float = 600.0
    ) -> None:
        self.server, self.refresh_seconds = server, refresh_seconds
        self.check_seconds = check_seconds
        self.ready = threading.Event()
        self.builds = 0  # full builds (start, a gap, a bulk change, a repair)
        self.updates = 0  # incremental updates
        self.differences = 0  # periodic checks that found the incremental state wrong
        self._views: dict[str, ClusterView] = {}  # by cluster name and id: what readers see
        self._states: dict[str, _ClusterState] = {}  # by cluster id: the index thread's
        self._lock = threading.Lock()  # one update at a time (the thread, or a test's call)
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

    def changed(self, found: Set[Change]) -> None:
        """This process committed these changes: look at the log now if any is the index's."""
        if any(c.kind in INDEX_KINDS for c in found):
            self._changed.set()

    def _run(self) -> None:
        next_check = time.monotonic() + self.check_seconds
        while not self._stop.is_set():
            try:
                self.refresh()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.check_seconds
                    self.check()
            except Exception:  # the store may be briefly unreachable: keep the last index
                _log.exception("admission: cannot update the index")
            wait = min(self.refresh_seconds, max(0.0, next_check - time.monotonic()))
            self._changed.wait(wait)
            self._changed.clear()

    def refresh(self) -> None:
        """Bring the index up to the store: in full the first time and after a gap in the
        change log, else by the changes logged since its revision."""
        with self._lock, self.server.reading() as session:
            if self._revision < 0 or changes.missed(session, self._revision):
                self._rebuild(session)
                return
            revision, found = changes.since(session, self._revision)
            mine = list(dict.fromkeys(c for c in found if c.kind in INDEX_KINDS))
            if mine:
                self._update(session, mine)
            self._revision = revision

    def _rebuild(self, session: Session) -> None:
        revision = changes.newest(session)  # first: a change during the build comes again
        states = _build(session)
        self._publish(states, {cid: s.views(None, None) for cid, s in states.items()})
        self._revision = revision
        self.builds += 1
        self.ready.set()

    def _update(self, session: Session, found: list[Change]) -> None:
        if any(c.cluster_id is None for c in found):  # a bulk change: its extent is unknown
            self._rebuild(session)
            return
        states = dict(self._states)
        views = {cid: v for cid, v in self._views.items() if cid in states}
        by_cluster: dict[str, list[Change]] = {}
        for c in found:
            by_cluster.setdefault(c.cluster_id or "", []).append(c)
        for cid, theirs in by_cluster.items():
            # A cluster added, renamed or deleted, or so many changes that one read of the
            # whole cluster costs less than a read per layer.
            if len(theirs) > _MANY or not all(map(_placeable, theirs)):
                cluster = session.get(Cluster, cid)
                if cluster is None:
                    states.pop(cid, None)
                    views.pop(cid, None)
                else:
                    states[cid] = _load(session, cluster)
                    views[cid] = states[cid].views(None, None)
                continue
            state = states.get(cid)
            if state is not None:  # else a cluster already gone
                views[cid] = state.views(views.get(cid), _apply(session, state, theirs))
        self._publish(states, views)
        self.updates += 1

    def _publish(self, states: dict[str, _ClusterState], views: dict[str, ClusterView]) -> None:
        published: dict[str, ClusterView] = {}
        for view in views.values():
            published[view.name] = published[view.id] = view
        self._states = states
        self._views = published  # one assignment: readers see the old index or the new one
        self.ready.set()

    def check(self) -> bool:
        """Compare the index with a fresh build of the store; a difference is logged,
        counted and repaired. False when there was one."""
        self.refresh()
        with self._lock:
            with self.server.reading() as session:
                revision = changes.newest(session)
                if revision != self._revision:
                    return True  # changes in flight: the next check compares
                states = _build(session)
                if changes.newest(session) != revision:
                    return True
            fresh = {cid: s.views(None, None) for cid, s in states.items()}
            have, want = _signature(self._views), _signature(fresh)
            if have == want:
                return True
            wrong = sorted(
                f"{(want.get(cid) or have[cid])[0]}/{name}"
                for cid in have.keys() | want.keys()
                for name in _differing(have.get(cid), want.get(cid))
            )
            _log.warning(
                "admission: the index differed from the store in %d place(s) (%s); rebuilt",
                len(wrong),
                ", ".join(wrong[:10]),
            )
            self._publish(states, fresh)
            self.differences += 1
            self.builds += 1
            return False

    @property
    def revision(self) -> int:
        """The change log's newest id the index includes."""
        return self._revision

    def cluster(self, ref: str | None) -> ClusterView | None:
        views = self._views
        if ref:
            return views.get(ref)
        distinct = {id(v): v for v in views.values()}
        return next(iter(distinct.values())) if len(distinct) == 1 else None


def _differing(have: Any, want: Any) -> list[str]:
    """The namespaces (or "*": the cluster's name or fallback) where two signatures differ."""
    if have is None or want is None:
        return ["*"]
    out = ["*"] if have[:2] != want[:2] else []
    names = have[2].keys() | want[2].keys()
    return out + sorted(n for n in names if have[2].get(n) != want[2].get(n))
