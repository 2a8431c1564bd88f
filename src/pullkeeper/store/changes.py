"""Typed changes: what a write transaction changed, derived in one place from the session.

A Change names a kind of stored object and where it is: its cluster, its project, its
namespace (for a credential: the fields of its scope; for a policy: the cluster's when
project_id is None). A Change with no cluster_id has an unknown extent (an ORM bulk
statement on a tracked table): a reader treats it as "anything of that kind may have
changed".

How they are found (`track`, on a session factory): after each flush the new, dirty and
deleted objects of the tracked tables, and on each ORM `update()`/`delete()`/`insert()`
statement its table. Writes of the tables not listed here (the audit trail, login
failures, checks, leases, the sync's statuses, keys) are no change; nor is a write that
only touches bookkeeping columns (who and when updated it), except a credential's: that
is a "check" change (its last check's result, shown in listings), which neither the
admission index nor the sync reads.

How they travel: before the commit, the transaction's changes are written to the
change_log table, in the same transaction; after the commit they are the session's
`committed` changes, which the server hands to its listeners (nothing on a rollback).
Other processes poll the log by id (`since`). Rows older than KEPT are pruned by the
writers (each process at most once a minute); the newest row is always kept, so a
reader whose revision lies before the oldest row left (`missed`) knows it fell behind
the pruning and must rebuild. On
PostgreSQL the writers take the log's lock just before committing, so ids become visible
in order and a reader at id N never later sees a row below N appear.
"""

from __future__ import annotations

import time
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, event, func, insert, inspect, select, text
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from pullkeeper.store.models import ChangeLogEntry, utcnow

__all__ = [
    "CHECK",
    "INDEX_KINDS",
    "KEPT",
    "KINDS",
    "SYNC_KINDS",
    "Change",
    "committed",
    "missed",
    "newest",
    "newest_committed",
    "pending",
    "prune",
    "since",
    "track",
]

KEPT = timedelta(hours=1)  # how long the change log keeps a row (readers poll in seconds)
# A process prunes at most this often (seconds): rows are kept at least KEPT, and a delete on
# every commit would cost each write a statement for nothing.
PRUNE_EVERY = 60.0


class _Pruning:
    due = 0.0  # when this process prunes next (time.monotonic)


# Table -> the kind of its changes; tables not here make none.
_KINDS = {
    "clusters": "cluster",
    "projects": "project",
    "namespaces": "namespace",
    "credentials": "credential",
    "policies": "policy",
    "role_bindings": "membership",
    "users": "user",
    "api_tokens": "token",
}
# A credential write of bookkeeping columns only: its last check's result, its token's
# schedule.
CHECK = "check"
KINDS = frozenset(_KINDS.values()) | {CHECK}
# What the admission index and the sync's desired state are made of.
INDEX_KINDS = frozenset({"cluster", "project", "namespace", "credential", "policy"})
SYNC_KINDS = INDEX_KINDS

# Columns whose writes are bookkeeping: a change of only these is none.
_BOOKKEEPING = frozenset(
    {
        "version",
        "updated_at",
        "updated_by",
        "check_status",
        "check_cause",
        "check_message",
        "checked_at",
        # A cloud credential's token's life and its refresher's schedule: a new token is
        # a change (of the password); a refresh that failed, or gave the same token, is not.
        "token_issued_at",
        "token_expires_at",
        "token_refresh_at",
        "token_error",
        "token_error_cause",
        "token_failures",
    }
)

_PENDING = "pullkeeper.changes.pending"
_COMMITTED = "pullkeeper.changes.committed"


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    cluster_id: str | None = None
    project_id: str | None = None
    namespace: str | None = None


def _of_values(kind: str, v: dict[str, Any], key: Any) -> Change:
    """The change of a row with these column values (key: the row's primary key)."""
    if kind == "cluster":
        return Change(kind, key)
    if kind == "project":
        return Change(kind, v.get("cluster_id"), key)
    if kind == "namespace":
        return Change(kind, v.get("cluster_id"), None, v.get("name"))
    if kind in ("credential", "policy"):
        return Change(kind, v.get("cluster_id"), v.get("project_id"), v.get("namespace"))
    if kind == "membership":
        return Change(kind, None, v.get("project_id"))
    return Change(kind)


def _of_object(obj: Any, kind: str, *, dirty: bool) -> list[Change]:
    state = inspect(obj)
    now = dict(state.dict)  # what is loaded: never a lazy load of a deleted row
    key = state.identity[0] if state.identity else now.get("id")
    if not dirty:
        return [_of_values(kind, now, key)]
    changed = {a.key for a in state.attrs if a.history.has_changes()}
    if not changed - _BOOKKEEPING:
        return [_bookkept(kind, now, key)] if kind == "credential" else []
    # The row as it was, too: a namespace moved or renamed changes where it was.
    before = dict(now)
    for name in changed:
        deleted = state.attrs[name].history.deleted
        if deleted:
            before[name] = deleted[0]
    return [_of_values(kind, now, key), _of_values(kind, before, key)]


def _bookkept(kind: str, v: dict[str, Any], key: Any) -> Change:
    """A credential's bookkeeping write, where the credential is."""
    where = _of_values(kind, v, key)
    return Change(CHECK, where.cluster_id, where.project_id, where.namespace)


def _pending(session: Session) -> set[Change]:
    found: set[Change] = session.info.setdefault(_PENDING, set())
    return found


def _after_flush(session: Session, _context: Any) -> None:
    found = _pending(session)
    for objects, dirty in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for obj in objects:
            kind = _KINDS.get(getattr(obj, "__tablename__", ""))
            if kind is not None:
                found.update(_of_object(obj, kind, dirty=dirty))


def _set_columns(state: ORMExecuteState) -> set[str] | None:
    """The columns an UPDATE sets; None when the statement does not tell."""
    values = getattr(state.statement, "_values", None)  # no public accessor in SQLAlchemy
    if values:
        return {getattr(k, "key", str(k)) for k in values}
    params = state.parameters
    rows: Sequence[Any] = params if isinstance(params, list) else [params] if params else []
    if rows and all(isinstance(r, dict) for r in rows):
        return {k for r in rows for k in r} - {"id"}
    return None


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    kind = _KINDS.get(getattr(table, "name", ""))
    if kind is None:
        return
    if state.is_update:
        columns = _set_columns(state)
        if columns is not None and not columns - _BOOKKEEPING:
            if kind == "credential":
                _pending(state.session).add(Change(CHECK))
            return
    # Which rows a bulk statement reaches is not known here: anything of the kind.
    _pending(state.session).add(Change(kind))


def _before_commit(session: Session) -> None:
    session.flush()  # the changes still pending in the session are found first
    found = session.info.get(_PENDING)
    if not found:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Held to the commit: log ids become visible in the order they were given.
        session.execute(text("LOCK TABLE change_log IN EXCLUSIVE MODE"))
    if time.monotonic() >= _Pruning.due:
        _Pruning.due = time.monotonic() + PRUNE_EVERY
        prune(session, utcnow() - KEPT)
    now = utcnow()
    session.execute(
        insert(ChangeLogEntry),
        [
            {
                "at": now,
                "kind": c.kind,
                "cluster_id": c.cluster_id,
                "project_id": c.project_id,
                "namespace": c.namespace,
            }
            for c in sorted(found, key=_order)
        ],
    )


def _order(c: Change) -> tuple[str, str, str, str]:
    return (c.kind, c.cluster_id or "", c.project_id or "", c.namespace or "")


def _after_commit(session: Session) -> None:
    session.info[_COMMITTED] = frozenset(session.info.pop(_PENDING, ()))


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def track(sessions: sessionmaker[Session]) -> None:
    """Find and log the typed changes of every transaction of these sessions."""
    event.listen(sessions, "after_flush", _after_flush)
    event.listen(sessions, "do_orm_execute", _on_execute)
    event.listen(sessions, "before_commit", _before_commit)
    event.listen(sessions, "after_commit", _after_commit)
    event.listen(sessions, "after_rollback", _after_rollback)


def committed(session: Session) -> frozenset[Change]:
    """The changes of the session's last committed transaction (once: they are taken)."""
    found: frozenset[Change] = session.info.pop(_COMMITTED, frozenset())
    return found


def pending(session: Session) -> frozenset[Change]:
    """The changes the session's open transaction has made so far (those flushed)."""
    return frozenset(session.info.get(_PENDING, ()))


def prune(session: Session, before: datetime) -> None:
    """Forget log rows older than `before`, the newest row always kept."""
    newest_id = select(func.max(ChangeLogEntry.id)).scalar_subquery()
    session.execute(
        delete(ChangeLogEntry).where(ChangeLogEntry.at < before, ChangeLogEntry.id < newest_id)
    )


def newest(session: Session, kinds: Set[str] | None = None) -> int:
    """The log's newest id (0: none yet), of these kinds when given: the revision a full
    read of the store (of what those kinds cover) includes."""
    stmt = _NEWEST if kinds is None else _NEWEST.where(ChangeLogEntry.kind.in_(sorted(kinds)))
    # Through Core: the ORM's execution costs several times the query itself, on every read
    # the read cache answers.
    return int(session.connection().scalar(stmt) or 0)


_NEWEST = select(func.max(ChangeLogEntry.id))


def newest_committed(engine: Engine) -> int:
    """The log's newest committed id, read on a pooled DBAPI connection outside any session:
    what every cached read asks first, at a tenth of a session's cost."""
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        try:
            cursor.execute(_NEWEST_SQL)
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        conn.close()  # back to the pool, its transaction (PostgreSQL's) rolled back
    return int(row[0] or 0) if row else 0


_NEWEST_SQL = "SELECT max(id) FROM change_log"


def missed(session: Session, revision: int) -> bool:
    """Whether rows after `revision` were pruned before this reader read them."""
    oldest = session.scalar(select(func.min(ChangeLogEntry.id)))
    return oldest is not None and oldest > revision + 1


def since(session: Session, revision: int) -> tuple[int, list[Change]]:
    """The changes logged after `revision`, and the revision they bring the reader to."""
    rows = session.execute(
        select(
            ChangeLogEntry.id,
            ChangeLogEntry.kind,
            ChangeLogEntry.cluster_id,
            ChangeLogEntry.project_id,
            ChangeLogEntry.namespace,
        )
        .where(ChangeLogEntry.id > revision)
        .order_by(ChangeLogEntry.id)
    ).all()
    if not rows:
        return revision, []
    return rows[-1].id, [Change(r.kind, r.cluster_id, r.project_id, r.namespace) for r in rows]
