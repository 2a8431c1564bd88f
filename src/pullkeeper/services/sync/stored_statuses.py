"""The sync's statuses in the store: written by the replica that syncs, read by all others.

The syncing replica keeps its statuses in memory (statuses.py) and writes what
changed here every poll; a replica that does not sync answers from these tables, so
every replica's API, pages, metrics and webhook see the same delivery.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select

from pullkeeper.services.sync.statuses import Changes, Status, SyncState
from pullkeeper.store.db import Database
from pullkeeper.store.models import SyncClusterError, SyncStatus

__all__ = ["StoredStatuses", "clear", "publish"]

_T = TypeVar("_T")
_TABLE = cast(Table, SyncStatus.__table__)
# Core, not ORM: an executemany of one DELETE per key.
_GONE = delete(_TABLE).where(
    _TABLE.c.credential_id == bindparam("c"),
    _TABLE.c.cluster_id == bindparam("k"),
    _TABLE.c.namespace == bindparam("n"),
)


def clear(db: Database) -> None:
    """Forget the previous syncing replica's statuses: a new one starts from what it sees."""
    with db.session() as session:
        session.execute(delete(SyncStatus))
        session.execute(delete(SyncClusterError))


def publish(db: Database, changes: Changes) -> None:
    if not (changes.present or changes.gone or changes.errors is not None):
        return
    keys = [{"c": c, "k": k, "n": n} for c, k, n in (*changes.present, *changes.gone)]
    rows = [
        {
            "credential_id": c,
            "cluster_id": k,
            "namespace": n,
            "cluster": s.cluster,
            "secret": s.secret,
            "state": s.state,
            "reason": s.reason,
            "since": s.since,
        }
        for (c, k, n), s in changes.present.items()
    ]
    with db.session() as session:
        if keys:
            session.connection().execute(_GONE, keys)
        if rows:
            session.execute(insert(SyncStatus), rows)
        if changes.errors is not None:
            session.execute(delete(SyncClusterError))
            if changes.errors:
                session.execute(
                    insert(SyncClusterError),
                    [{"cluster_id": k, "message": m} for k, m in changes.errors.items()],
                )


class _Every(Generic[_T]):
    """A value read from the store at most once a period: for what is asked on every
    review or listed row, where a poll's staleness is what the followers promise anyway."""

    def __init__(self, seconds: float, read: Callable[[], _T]) -> None:
        self.seconds, self._read = seconds, read
        self._lock = threading.Lock()
        self._value: _T | None = None
        self._at = float("-inf")

    def get(self) -> _T:
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.seconds:
                self._value, self._at = self._read(), time.monotonic()
            return self._value


class StoredStatuses:
    """Statuses as the syncing replica last wrote them: the read side of Statuses."""

    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self.db = db
        self._errors = _Every(refresh_seconds, self._read_errors)
        self._conflicts = _Every(refresh_seconds, self._read_conflicts)

    def of(self, credential_id: str) -> list[Status]:
        with self.db.reading() as session:
            rows = session.scalars(
                select(SyncStatus)
                .where(SyncStatus.credential_id == credential_id)
                .order_by(SyncStatus.cluster, SyncStatus.namespace)
            )
            return [
                Status(r.cluster, r.namespace, r.secret, SyncState(r.state), r.reason, r.since)
                for r in rows
            ]

    def errors(self) -> dict[str, str]:
        return dict(self._errors.get())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(SyncState, 0)
        with self.db.reading() as session:
            for state, n in session.execute(
                select(SyncStatus.state, func.count()).group_by(SyncStatus.state)
            ):
                out[state] = n
        return out

    def cluster_counts(self, cluster_id: str) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(SyncState, 0)
        with self.db.reading() as session:
            for state, n in session.execute(
                select(SyncStatus.state, func.count())
                .where(SyncStatus.cluster_id == cluster_id)
                .group_by(SyncStatus.state)
            ):
                out[state] = n
        return out

    def conflicts(self, cluster_id: str, namespace: str) -> frozenset[str]:
        return self._conflicts.get().get((cluster_id, namespace), frozenset())

    def _read_errors(self) -> dict[str, str]:
        with self.db.reading() as session:
            rows = session.execute(select(SyncClusterError.cluster_id, SyncClusterError.message))
            return dict(rows.all())

    def _read_conflicts(self) -> dict[tuple[str, str], frozenset[str]]:
        found: dict[tuple[str, str], set[str]] = defaultdict(set)
        with self.db.reading() as session:
            rows = session.execute(
                select(SyncStatus.cluster_id, SyncStatus.namespace, SyncStatus.secret).where(
                    SyncStatus.state == SyncState.CONFLICT
                )
            )
            for k, n, secret in rows:
                found[(k, n)].add(secret)
        return {key: frozenset(v) for key, v in found.items()}
