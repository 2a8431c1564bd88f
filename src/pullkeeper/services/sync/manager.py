"""The sync of every registered cluster: one loop per cluster, run by the one replica that
holds the sync lease; every replica answers for the statuses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Set

from sqlalchemy import select

from pullkeeper.kube.api import Access, ClusterAPI
from pullkeeper.services import leader
from pullkeeper.services.server import Server
from pullkeeper.services.sync import stored_statuses
from pullkeeper.services.sync.cluster_loop import ClusterSync, Options
from pullkeeper.services.sync.statuses import Statuses
from pullkeeper.store.changes import SYNC_KINDS, Change
from pullkeeper.store.models import Cluster

__all__ = ["SyncManager", "start"]

_log = logging.getLogger("pullkeeper.sync")


class SyncManager:
    """One ClusterSync per registered cluster, started and stopped as clusters come and go,
    in the one replica that holds the sync lease; the others read its statuses."""

    def __init__(
        self,
        server: Server,
        options: Options,
        api_for: Callable[[Access], ClusterAPI] | None = None,
    ) -> None:
        self.server, self.options, self._api_for = server, options, api_for
        self.lease = leader.Lease(server.db, leader.SYNC, options.lease_seconds)
        self._own = Statuses()
        self._stored = stored_statuses.StoredStatuses(server.db, options.poll_seconds)
        self.leading = False
        self.loops: dict[str, ClusterSync] = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync-manager", daemon=True)

    @property
    def statuses(self) -> Statuses | stored_statuses.StoredStatuses:
        """This replica's statuses while it syncs, else those the syncing one wrote."""
        return self._own if self.leading else self._stored

    @property
    def synced_by(self) -> str:
        """The replica that syncs: this one's holder name, another's, or "" (none yet)."""
        return self.lease.holder if self.leading else self.lease.other

    def start(self) -> None:
        try:  # a lone server syncs from its first moment
            self._step()
        except Exception:
            _log.exception("sync: cannot take part in the election yet")
        self._thread.start()

    def changed(self, changes: Set[Change]) -> None:
        """The store changed in this process: look at once if what changed can alter what a
        cluster should hold (services/desired_state.py reads only these kinds)."""
        if any(c.kind in SYNC_KINDS for c in changes):
            self._changed.set()

    def _run(self) -> None:
        poke = False
        while not self._stop.is_set():
            # Other processes' changes the loops find by polling; this one's come at once.
            poke = self._changed.wait(self.options.poll_seconds)
            self._changed.clear()
            if self._stop.is_set():
                break
            try:
                self._step(poke)
            except Exception:  # the store may be briefly unreachable; look again later
                _log.exception("sync: cannot read the clusters")

    def _step(self, poke: bool = False) -> None:
        if self.lease.hold():
            if not self.leading:
                stored_statuses.clear(self.server.db)
                self._own = Statuses()
                self.leading = True
                _log.info("sync: this replica (%s) syncs the clusters", self.lease.holder)
            self.refresh(poke)
            stored_statuses.publish(self.server.db, self._own.take_changes())
        elif self.leading:
            _log.warning("sync: %s holds the sync lease now; this replica stops", self.lease.other)
            self.leading = False
            self._stop_loops()

    def refresh(self, poke: bool = True) -> None:
        """Start loops for new clusters, stop those of removed ones; poke the rest to look."""
        with self.server.reading() as session:
            ids = set(session.scalars(select(Cluster.id)))
        with self._lock:
            for gone in set(self.loops) - ids:
                self.loops.pop(gone).stop()
            for cid in ids - set(self.loops):
                loop = ClusterSync(
                    self.server,
                    cid,
                    self._own,
                    self.options,
                    self._api_for,
                    leading=lambda: self.lease.held,
                )
                self.loops[cid] = loop
                loop.start()
            if poke:
                for cid in ids & set(self.loops):
                    self.loops[cid].store_changed()

    def _stop_loops(self) -> None:
        with self._lock:
            loops, self.loops = list(self.loops.values()), {}
        for loop in loops:
            loop.stop()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        self._thread.join(5)
        self._stop_loops()
        if self.leading:
            self.leading = False
            self.lease.release()  # another replica goes on at once


def start(server: Server, api_for: Callable[[Access], ClusterAPI] | None = None) -> SyncManager:
    """The server's sync, running; the server tells it of every write it makes."""
    settings = server.settings
    options = Options(
        resync_seconds=settings.sync_resync_seconds,
        poll_seconds=settings.sync_poll_seconds,
        excluded=tuple(settings.sync_excluded_namespaces),
        # The holder renews it on its polls: a lease shorter than three polls would lapse.
        lease_seconds=max(settings.sync_lease_seconds, 3 * settings.sync_poll_seconds),
    )
    manager = SyncManager(server, options, api_for)
    server.sync = manager
    server.on_change.append(manager.changed)
    manager.start()
    return manager
