"""The admission webhook's audit records, written off the request path.

A review that leaves a record (a denial, a warning, an audit finding) puts an
`Entry` on a bounded queue and is answered at once; one thread writes what is
queued in batches, each in ONE transaction, at least every `FLUSH_SECONDS` and
once more when the webhook stops. A review that finds the queue full is still
answered: its record is counted as overflow, not written.

A batch the store refuses is logged (one line, the error's type) and counted,
and kept for the next flushes: at most `ATTEMPTS` tries in all, so a store that
stays down cannot hold records without bound; then the batch's records are
counted as lost.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.server import Server
from pullkeeper.store.models import Cluster, Namespace

__all__ = ["ATTEMPTS", "FLUSH_SECONDS", "AuditWriter", "Entry"]

_log = logging.getLogger("pullkeeper.admission")
ATTEMPTS = 3  # tries of one batch before its records are given up
FLUSH_SECONDS = 1.0  # the longest a queued record waits for its write


@dataclass(frozen=True, slots=True)
class Entry:
    """One admission audit record, as the review gave it."""

    cluster: str | None  # the cluster's name; None when pullkeeper knows no such cluster
    namespace: str
    username: str
    action: str
    object_type: str
    object_id: str
    after: dict[str, Any]


class AuditWriter:
    """The queue of admission audit records and the thread that writes them."""

    STOP_SECONDS = 10.0  # how long a stop waits for the last flush (a store that hangs)

    def __init__(self, server: Server, size: int) -> None:
        self.server, self.flush_seconds = server, FLUSH_SECONDS
        self.overflow = 0  # records not queued: the queue was full
        self.write_errors = 0  # flushes the store refused
        self.lost = 0  # records given up after ATTEMPTS refused flushes
        self._queue: queue.SimpleQueue[Entry] = queue.SimpleQueue()
        self._size = size
        self._held: list[Entry] = []  # the batch being written, or refused and tried again
        self._attempts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="admission-audit", daemon=True)

    @property
    def queued(self) -> int:
        """Records not written yet (a refused batch waiting for its next try included)."""
        return self._queue.qsize() + len(self._held)

    def put(self, entry: Entry) -> bool:
        """Queue a record; False (and counted) when the queue is full."""
        with self._lock:
            if self._queue.qsize() >= self._size:
                self.overflow += 1
                return False
            self._queue.put(entry)
            return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued and end the thread (or, never started, write it here)."""
        self._stop.set()
        if not self._thread.is_alive():
            self.flush()
            return
        self._thread.join(self.STOP_SECONDS)
        if self._thread.is_alive():
            _log.error("admission: audit records still being written at stop; not waited for")

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
        self.flush()  # what was queued before the stop

    def flush(self) -> None:
        """Write the refused batch, if any, and everything queued, in one transaction."""
        # The batch is held while it is written, so `queued` counts it until it is stored.
        batch = self._held
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        try:
            self._write(batch)
        except Exception as e:  # the store may be briefly unreachable: keep the batch
            self.write_errors += 1
            self._attempts += 1
            if self._attempts < ATTEMPTS:
                _log.error(
                    "admission: cannot write %d audit records (%s); tried again in %g s",
                    len(batch), type(e).__name__, self.flush_seconds,
                )  # fmt: skip
                return
            self.lost += len(batch)
            _log.error(
                "admission: %d audit records lost: the store refused them %d times (%s)",
                len(batch), self._attempts, type(e).__name__,
            )  # fmt: skip
        self._held, self._attempts = [], 0

    def _write(self, batch: list[Entry]) -> None:
        with self.server.transaction() as session:
            # Every record's project in one query: the namespaces of the batch's clusters.
            clusters = {e.cluster for e in batch if e.cluster is not None}
            found = session.execute(
                select(Cluster.name, Namespace.name, Namespace.project_id)
                .join(Cluster, Cluster.id == Namespace.cluster_id)
                .where(Cluster.name.in_(clusters))
                .where(Namespace.name.in_({e.namespace for e in batch}))
            )
            projects: dict[tuple[str | None, str], str | None] = {(c, n): p for c, n, p in found}
            for e in batch:
                audit.record(
                    session,
                    Actor(user_id="", username=e.username, source=f"admission:{e.cluster or '?'}"),
                    e.action,
                    e.object_type,
                    e.object_id,
                    project_id=projects.get((e.cluster, e.namespace)),
                    after=e.after,
                )
