"""One cluster's sync: a watch-driven loop, on a thread of its own, keeping the cluster's
Secrets (and, in ServiceAccount mode, its ServiceAccounts) as the store says.

Each loop lists the cluster's namespaces and the Secrets pullkeeper manages
(two list calls, whatever the number of namespaces), writes what differs,
then follows both with watches: a namespace created or relabelled, or a
managed Secret edited or deleted by hand, is reconciled within moments. A
change in the store (this process's writes at once, other replicas' through
a cheap poll of the audit trail's newest id) reconciles from the cached
cluster state, without listing again. A periodic full resync repairs what the
watches missed and writes nothing when nothing differs.

Failures of the Kubernetes API never end a loop: a write refused for good
(403, 422) is reported on its Secret; throttling, server errors and lost
connections are retried with backoff; one cluster being down holds up no
other.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pullkeeper.core import delivery, serviceaccounts
from pullkeeper.core.delivery import Desired, Existing
from pullkeeper.kube.api import Access, ClusterAPI, KubeError
from pullkeeper.services import desired_state, kubeconfigs
from pullkeeper.services.server import Server
from pullkeeper.services.sync import discovery
from pullkeeper.services.sync.echoes import Echoes
from pullkeeper.services.sync.statuses import Status, Statuses, SyncState
from pullkeeper.store.models import Cluster

__all__ = ["ClusterSync", "Options"]

_log = logging.getLogger("pullkeeper.sync")

# What each loop lists and watches.
_WATCHED = ("namespace", "secret", "account")


@dataclass(frozen=True, slots=True)
class Options:
    resync_seconds: float = 600.0
    poll_seconds: float = 2.0
    # A stopped watch's thread ends at the latest when the server ends its watch.
    watch_timeout: int = 60
    excluded: tuple[str, ...] = delivery.DEFAULT_EXCLUDED
    max_backoff: float = 60.0
    lease_seconds: float = 15.0


class ClusterSync:
    """The loop of one cluster, on a thread of its own."""

    def __init__(
        self,
        server: Server,
        cluster_id: str,
        statuses: Statuses,
        options: Options,
        api_for: Callable[[Access], ClusterAPI] | None = None,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.server, self.cluster_id, self.statuses, self.options = (
            server,
            cluster_id,
            statuses,
            options,
        )
        self._api_for = api_for or ClusterAPI
        # Asked before every write: a replica stalled past its lease (another may hold it
        # now) writes nothing more, even before its manager notices and stops this loop.
        self._leading = leading
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sync-{cluster_id}", daemon=True)
        self._namespaces: dict[str, delivery.Namespace] = {}
        self._secrets: dict[tuple[str, str], Existing] = {}
        self._accounts: dict[tuple[str, str], dict[str, Any]] = {}  # ServiceAccount objects
        self._echoes = Echoes()  # of Secret writes
        self._account_echoes = Echoes()
        self._state: desired_state.ClusterState | None = None
        self._cluster_name = cluster_id
        self._hash_key = b""
        self._seen = 0  # the store revision (newest change-log id) the loaded state includes
        self._watching = threading.Event()  # set: the current watches end
        self.writes = 0  # Secret writes (create, update, delete) this loop has made
        self.passes = 0  # reconcile passes, full or partial

    # -- control

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._watching.set()
        self._events.put(("stop", None))
        self._thread.join(timeout)

    def store_changed(self) -> None:
        self._events.put(("store", None))

    # -- the loop

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            api: ClusterAPI | None = None
            try:
                api = self._connect()
                self._follow(api)
                backoff = 1.0
            except KubeError as e:
                if e.gone:
                    _log.info("cluster %s: %s; listing again", self._cluster_name, e.message)
                    continue  # list again at once
                self.statuses.cluster_error(self.cluster_id, e.message)
                _log.warning("cluster %s: %s; retrying in %.0f s", self._cluster_name, e, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.options.max_backoff)
            except Exception:  # never let one cluster's surprise end its loop
                _log.exception("cluster %s: unexpected failure", self._cluster_name)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.options.max_backoff)
            finally:
                self._watching.set()  # each watch closes its own client
                if api is not None:
                    api.close()

    def _connect(self) -> ClusterAPI:
        with self.server.reading() as session:
            cluster = session.get(Cluster, self.cluster_id)
            if cluster is None:
                self._stop.set()
                raise KubeError("the cluster was removed")
            self._cluster_name = cluster.name
            access = kubeconfigs.access_of(self.server.vault, cluster)
        return self._api_for(access)

    def _follow(self, api: ClusterAPI) -> None:
        self._hash_key = self.server.content_hash_key()
        versions = {kind: self._list(api, kind) for kind in _WATCHED}
        self.statuses.cluster_error(self.cluster_id, None)
        self._record_namespaces(n for n in self._namespaces.values() if not n.terminating)
        self._load_store()
        self._reconcile(api, None)
        stop = self._watching = threading.Event()
        for kind in _WATCHED:
            self._start_watch(api, kind, versions[kind], stop)
        next_resync = time.monotonic() + self.options.resync_seconds
        next_poll = time.monotonic() + self.options.poll_seconds
        while not self._stop.is_set():
            now = time.monotonic()
            wait = max(0.0, min(next_resync, next_poll) - now)
            batch = self._take(wait)
            touched: set[str] = set()
            expired: set[str] = set()
            reload = poked = False
            for kind, payload in batch:
                if kind == "stop":
                    return
                if kind == "failed":
                    raise payload
                if kind == "gone":
                    expired.add(payload)
                if kind == "store":
                    poked = True
                elif kind == "namespace":
                    touched |= self._namespace_event(*payload)
                elif kind == "secret":
                    touched |= self._secret_event(*payload)
                elif kind == "account":
                    touched |= self._account_event(*payload)
                elif kind == "retry":
                    touched.add(payload)
            now = time.monotonic()
            if poked or now >= next_poll:
                # Only a change since the state was loaded reloads it: the loop's own records
                # of the namespaces it found (which poke it too) need nothing.
                reload = self._store_revision() != self._seen
                if now >= next_poll:
                    next_poll = now + self.options.poll_seconds
            if now >= next_resync:
                return  # the outer loop lists everything again
            if expired:
                # A watch too far behind (410 Gone): list that kind again, not all three.
                for kind in sorted(expired):
                    self._start_watch(api, kind, self._list(api, kind), stop)
                if "namespace" in expired:
                    self._record_namespaces(
                        n for n in self._namespaces.values() if not n.terminating
                    )
                reload = True
            if reload:
                self._load_store()
                self._reconcile(api, None)
            elif touched:
                self._reconcile(api, touched)

    def _list(self, api: ClusterAPI, kind: str) -> str:
        """List one watched kind into the loop's view; the resourceVersion to watch from."""
        if kind == "namespace":
            found, version = api.list_namespaces()
            self._namespaces = {
                n.name: n for n in (delivery.Namespace.from_object(o) for o in found)
            }
        elif kind == "secret":
            found, version = api.list_managed_secrets()
            self._echoes.clear()
            self._secrets = {
                (e.namespace, e.name): e
                for e in (Existing.from_object(o, self._hash_key) for o in found)
            }
        else:
            found, version = api.list_service_accounts()
            self._account_echoes.clear()
            self._accounts = {_key(a): a for a in found}
        return version

    def _start_watch(self, api: ClusterAPI, kind: str, version: str, stop: threading.Event) -> None:
        watch = {
            "namespace": api.watch_namespaces,
            "secret": api.watch_managed_secrets,
            "account": api.watch_service_accounts,
        }[kind]
        events = watch(version, self.options.watch_timeout, stop)
        threading.Thread(target=self._watch, args=(kind, events, stop), daemon=True).start()

    def _take(self, wait: float) -> list[tuple[str, Any]]:
        """The next events: the first within `wait`, then whatever follows within 50 ms."""
        batch: list[tuple[str, Any]] = []
        try:
            batch.append(self._events.get(timeout=wait))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + 0.05
        while (left := deadline - time.monotonic()) > 0:
            try:
                batch.append(self._events.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _watch(
        self, kind: str, events: Iterable[tuple[str, dict[str, Any]]], stop: threading.Event
    ) -> None:
        """Follow one watch until the loop moves on (`stop`)."""
        try:
            for event, obj in events:
                if stop.is_set():
                    return
                if event in ("ADDED", "MODIFIED", "DELETED"):
                    self._events.put((kind, (event, obj)))
            if not stop.is_set():
                self._events.put(("failed", KubeError(f"the {kind} watch ended")))
        except KubeError as e:
            if stop.is_set():
                return
            if e.gone:
                _log.info("cluster %s: %s; listing again", self._cluster_name, e.message)
                self._events.put(("gone", kind))
            else:
                self._events.put(("failed", e))
        except Exception as e:  # a surprise: list again
            if not stop.is_set():
                self._events.put(("failed", KubeError(f"the watch failed: {e}")))

    # -- events

    def _namespace_event(self, event: str, obj: dict[str, Any]) -> set[str]:
        ns = delivery.Namespace.from_object(obj)
        if event == "DELETED":
            self._namespaces.pop(ns.name, None)
            for slot in [s for s in self._secrets if s[0] == ns.name]:
                del self._secrets[slot]
            for key in [k for k in self._accounts if k[0] == ns.name]:
                del self._accounts[key]
            self.statuses.drop(self.cluster_id, ns.name)
            return set()
        old = self._namespaces.get(ns.name)
        if ns.terminating:
            if old is None or not old.terminating:
                self._terminating(ns.name)
            return set()
        recorded = old.recorded_project if old else None
        if old is not None and _labelled(old) and not _labelled(ns):
            # The label that put it in a project is gone: so is that membership.
            recorded = None
            self._unrecord(ns.name)
        self._namespaces[ns.name] = delivery.Namespace(ns.name, ns.labels, recorded)
        if old is None or old.labels != ns.labels or old.terminating:
            self._record_namespaces([self._namespaces[ns.name]])
            return {ns.name}
        return set()

    def _terminating(self, name: str) -> None:
        """The namespace is being deleted: nothing more to write there, nothing to report."""
        old = self._namespaces.get(name)
        if old is not None:
            self._namespaces[name] = delivery.Namespace(
                name, old.labels, old.recorded_project, terminating=True
            )
        self.statuses.drop(self.cluster_id, name)

    def _secret_event(self, event: str, obj: dict[str, Any]) -> set[str]:
        found = Existing.from_object(obj, self._hash_key)
        slot = (found.namespace, found.name)
        if self._echoes.stale(slot, event, found.resource_version):
            return set()
        if event == "DELETED":
            self._secrets.pop(slot, None)
        else:
            self._secrets[slot] = found
        return {found.namespace}

    def _account_event(self, event: str, obj: dict[str, Any]) -> set[str]:
        key = _key(obj)
        if self._account_echoes.stale(key, event, _version(obj)):
            return set()
        if event == "DELETED":
            self._accounts.pop(key, None)
            return set()
        self._accounts[key] = obj
        return {key[0]}

    # -- the store

    def _store_revision(self) -> int:
        with self.server.reading() as session:
            return discovery.revision(session)

    def _load_store(self) -> None:
        with self.server.reading() as session:
            revision = discovery.revision(session)  # first: a change during the load reloads again
            cluster = session.get(Cluster, self.cluster_id)
            if cluster is None:
                self._stop.set()
                raise KubeError("the cluster was removed")
            self._state = desired_state.load(session, self.server.vault, cluster)
        self._seen = revision
        self._hash_key = self.server.content_hash_key()
        recorded = {n.name: n.recorded_project for n in self._state.namespaces}
        self._namespaces = {
            name: delivery.Namespace(name, ns.labels, recorded.get(name), ns.terminating)
            for name, ns in self._namespaces.items()
        }
        # A project created after its namespaces were labelled: record them in it now.
        projects = self._state.projects.values()
        stale = [
            ns
            for ns in self._namespaces.values()
            if _labelled(ns)
            and not ns.terminating
            and (labelled := delivery.project_of(delivery.Namespace(ns.name, ns.labels), projects))
            and labelled != ns.recorded_project
        ]
        if stale:
            self._record_namespaces(stale)

    def _record_namespaces(self, seen: Iterable[delivery.Namespace]) -> None:
        self._own_records(
            discovery.record_namespaces(self.server, self.cluster_id, self._cluster_name, seen)
        )

    def _unrecord(self, name: str) -> None:
        self._own_records(
            discovery.unrecord_namespace(self.server, self.cluster_id, self._cluster_name, name)
        )

    def _own_records(self, recorded: discovery.Recorded) -> None:
        """The loop's own records need no reload of the store: when their changes are all that
        is new since a revision the loaded state includes, that state includes them too."""
        if (
            recorded.count
            and recorded.before == self._seen
            and recorded.after - recorded.before == recorded.count
        ):
            self._seen = recorded.after

    # -- reconciling

    def _reconcile(self, api: ClusterAPI, only: set[str] | None) -> None:
        state = self._state
        if state is None:
            return
        self.passes += 1
        scope = [
            n
            for n in self._namespaces.values()
            if (only is None or n.name in only) and not n.terminating
        ]
        desired, collisions = delivery.desired_state(
            state.credentials, scope, state.projects.values(), self._hash_key, self.options.excluded
        )
        plan = delivery.plan(desired, self._secrets, [n.name for n in scope])
        cluster = self._cluster_name
        for want in plan.in_sync:
            self._status(want, SyncState.IN_SYNC)
        for c in collisions:
            self.statuses.set(
                self.cluster_id,
                c.refused,
                Status(cluster, c.namespace, c.name, SyncState.CONFLICT, c.reason),
            )
        for want in plan.create:
            self._write(api, want, None)
        for want, have in plan.update:
            self._write(api, want, have)
        for have in plan.delete:
            if not self._leading():
                return
            slot = (have.namespace, have.name)
            try:
                if api.delete_secret(*slot):
                    self._echoes.deleted(slot)
                self.writes += 1
                self._secrets.pop(slot, None)
            except KubeError as e:
                self._failed(e, have.namespace)
        self._reconcile_accounts(api, scope, desired)
        if only is None:
            live = [(d.credential_id, d.namespace) for d in desired.values()]
            live += [(c.refused, c.namespace) for c in collisions]
            self.statuses.keep_only(self.cluster_id, live)

    def _reconcile_accounts(
        self,
        api: ClusterAPI,
        scope: list[delivery.Namespace],
        desired: dict[tuple[str, str], Desired],
    ) -> None:
        """ServiceAccount mode: each selected account lists its namespace's delivered Secrets."""
        state = self._state
        if state is None:
            return
        names = {n.name for n in scope}
        selection = {
            n.name: state.accounts_for(delivery.project_of(n, state.projects.values()))
            for n in scope
        }
        delivered: dict[str, list[str]] = {}
        for (ns, name), want in desired.items():
            have = self._secrets.get((ns, name))
            # Only a Secret that is there and ours: never point an account at someone else's.
            if have is not None and have.managed and have.credential_id == want.credential_id:
                delivered.setdefault(ns, []).append(name)
        accounts = [
            serviceaccounts.Account.from_object(obj)
            for key, obj in self._accounts.items()
            if key[0] in names
        ]
        for change in serviceaccounts.changes(accounts, selection, delivered):
            if not self._leading():
                return
            key = (change.account.namespace, change.account.name)
            try:
                written = api.replace_service_account(change.apply_to(self._accounts[key]))
                self.writes += 1
                self._accounts[key] = written
                self._account_echoes.wrote(key, _version(written))
            except KubeError as e:
                if e.status == 409:
                    self._events.put(("retry", key[0]))  # changed meanwhile: look again
                    continue
                if e.status == 404:
                    self._accounts.pop(key, None)
                    continue
                self._failed(e, key[0])

    def _write(self, api: ClusterAPI, want: Desired, have: Existing | None) -> None:
        if not self._leading():
            return
        slot = (want.namespace, want.name)
        try:
            if have is None:
                try:
                    obj = api.create_secret(want.manifest())
                except KubeError as e:
                    if e.status != 409:
                        raise
                    taken = self._take_over(api, want)
                    if taken is None:
                        return
                    obj = taken
            else:
                obj = api.replace_secret(want.manifest(), have.resource_version)
            self.writes += 1
            self._secrets[slot] = written = Existing.from_object(obj, self._hash_key)
            self._echoes.wrote(slot, written.resource_version)
            self._status(want, SyncState.IN_SYNC)
        except KubeError as e:
            if e.status == 409:
                # Changed since we read it: read again, and the next pass decides.
                current = api.get_secret(want.namespace, want.name)
                if current is not None:
                    self._secrets[slot] = Existing.from_object(current, self._hash_key)
                self._events.put(("retry", want.namespace))
                self._status(want, SyncState.PENDING, "changed while being written; trying again")
                return
            self._failed(e, want.namespace, want)

    def _take_over(self, api: ClusterAPI, want: Desired) -> dict[str, Any] | None:
        """A same-named Secret exists: ours (write over it), adoptable, or a conflict."""
        current = api.get_secret(want.namespace, want.name)
        if current is None:
            return api.create_secret(want.manifest())
        existing = Existing.from_object(current)
        if existing.managed or want.adopt:
            if current.get("type") != want.manifest()["type"]:
                # A Secret's type is immutable: adopting one of another type replaces it.
                api.delete_secret(want.namespace, want.name)
                return api.create_secret(want.manifest())
            return api.replace_secret(want.manifest(), existing.resource_version)
        self._status(
            want,
            SyncState.CONFLICT,
            f"a Secret {want.name} that pullkeeper did not create exists in {want.namespace}; "
            "it is left alone: rename the credential, remove that Secret, or let the "
            "credential adopt it",
        )
        return None

    def _failed(self, e: KubeError, namespace: str, want: Desired | None = None) -> None:
        if e.status is None:
            raise e  # no answer at all: reconnect and list again
        if e.terminating:
            self._terminating(namespace)  # its watch event is on its way
            return
        if e.retryable:
            delay = 1.0
            threading.Timer(delay, self._events.put, args=(("retry", namespace),)).start()
            if want is not None:
                self._status(want, SyncState.PENDING, e.message)
            return
        if want is not None:
            self._status(want, SyncState.ERROR, e.message)
        _log.warning("cluster %s: %s", self._cluster_name, e.message)

    def _status(self, want: Desired, state: SyncState, reason: str = "") -> None:
        self.statuses.set(
            self.cluster_id,
            want.credential_id,
            Status(self._cluster_name, want.namespace, want.name, state, reason),
        )


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _labelled(ns: delivery.Namespace) -> bool:
    return bool(
        ns.labels.get(delivery.PROJECT_LABEL) or ns.labels.get(delivery.RANCHER_PROJECT_LABEL)
    )
