"""Where each credential's delivered Secrets stand: the states, the syncing replica's
in-memory store of statuses, and the status query every face asks."""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pullkeeper.services.server import Server

__all__ = ["Changes", "Status", "Statuses", "SyncState", "cluster_state", "status_of"]


class SyncState(enum.StrEnum):
    """Where one delivered Secret stands; the values are what the store and the API carry."""

    IN_SYNC = "in_sync"
    PENDING = "pending"
    CONFLICT = "conflict"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Status:
    cluster: str
    namespace: str
    secret: str
    state: SyncState
    reason: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "secret": self.secret,
            "state": self.state,
            "reason": self.reason,
            "since": self.since.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Changes:
    """Statuses set (by key) and gone since the last look; the cluster errors, if changed."""

    present: dict[tuple[str, str, str], Status]
    gone: set[tuple[str, str, str]]
    errors: dict[str, str] | None


class Statuses:
    """Where each credential's Secrets stand, per cluster and namespace; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # credential id -> (cluster id, namespace) -> Status
        self._by_credential: dict[str, dict[tuple[str, str], Status]] = {}
        self._cluster_errors: dict[str, str] = {}
        # (cluster id, namespace) -> names of Secrets that are someone else's there
        self._conflicts: dict[tuple[str, str], set[str]] = {}
        # What changed since the last take_changes(): (credential id, cluster id, namespace).
        self._dirty: set[tuple[str, str, str]] = set()
        self._errors_dirty = False

    def set(self, cluster_id: str, credential_id: str, status: Status) -> None:
        with self._lock:
            slots = self._by_credential.setdefault(credential_id, {})
            old = slots.get((cluster_id, status.namespace))
            if old is not None and (old.state, old.reason) == (status.state, status.reason):
                return  # keep "since"
            slots[(cluster_id, status.namespace)] = status
            self._dirty.add((credential_id, cluster_id, status.namespace))
            names = self._conflicts.setdefault((cluster_id, status.namespace), set())
            if status.state == SyncState.CONFLICT:
                names.add(status.secret)
            else:
                names.discard(status.secret)

    def keep_only(self, cluster_id: str, live: Iterable[tuple[str, str]]) -> None:
        """Forget the cluster's statuses but those of these (credential id, namespace)."""
        keep = set(live)
        with self._lock:
            for credential_id, slots in list(self._by_credential.items()):
                for slot in [s for s in slots if s[0] == cluster_id]:
                    if (credential_id, slot[1]) not in keep:
                        del slots[slot]
                        self._dirty.add((credential_id, *slot))
                if not slots:
                    del self._by_credential[credential_id]
            for key in [k for k in self._conflicts if k[0] == cluster_id]:
                del self._conflicts[key]
            for slots in self._by_credential.values():
                for (cid, namespace), status in slots.items():
                    if cid == cluster_id and status.state == SyncState.CONFLICT:
                        self._conflicts.setdefault((cid, namespace), set()).add(status.secret)

    def drop(self, cluster_id: str, namespace: str) -> None:
        """Forget the cluster's statuses in a namespace that is going or gone."""
        with self._lock:
            for credential_id, slots in list(self._by_credential.items()):
                if slots.pop((cluster_id, namespace), None) is not None:
                    self._dirty.add((credential_id, cluster_id, namespace))
                if not slots:
                    del self._by_credential[credential_id]
            self._conflicts.pop((cluster_id, namespace), None)

    def conflicts(self, cluster_id: str, namespace: str) -> frozenset[str]:
        """Names of Secrets in the namespace that pullkeeper found but does not manage."""
        with self._lock:
            return frozenset(self._conflicts.get((cluster_id, namespace), ()))

    def cluster_error(self, cluster_id: str, message: str | None) -> None:
        with self._lock:
            if self._cluster_errors.get(cluster_id) == message:
                return
            if message is None:
                self._cluster_errors.pop(cluster_id, None)
            else:
                self._cluster_errors[cluster_id] = message
            self._errors_dirty = True

    def take_changes(self) -> Changes:
        """What changed since the last call, for the other replicas to read (stored_statuses)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            errors = dict(self._cluster_errors) if self._errors_dirty else None
            self._errors_dirty = False
            present = {
                key: status
                for key in dirty
                if (status := self._by_credential.get(key[0], {}).get(key[1:])) is not None
            }
        return Changes(present, dirty - set(present), errors)

    def of(self, credential_id: str) -> list[Status]:
        with self._lock:
            found = list(self._by_credential.get(credential_id, {}).values())
        return sorted(found, key=lambda s: (s.cluster, s.namespace))

    def errors(self) -> dict[str, str]:
        with self._lock:
            return dict(self._cluster_errors)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(SyncState, 0)
        with self._lock:
            for slots in self._by_credential.values():
                for status in slots.values():
                    out[status.state] += 1
        return out

    def cluster_counts(self, cluster_id: str) -> dict[str, int]:
        """How many of the cluster's delivered Secrets are in each state."""
        out: dict[str, int] = dict.fromkeys(SyncState, 0)
        with self._lock:
            for slots in self._by_credential.values():
                for (cid, _), status in slots.items():
                    if cid == cluster_id:
                        out[status.state] += 1
        return out


# An absolute file path in a message (not a URL's path: no scheme or host before it).
_PATH = re.compile(r"(?<![\w:/.-])/[^\s'\",;()]+")


def without_paths(message: str) -> str:
    """A message with the server's file paths left out, for those who may not see them."""
    return _PATH.sub("(a file on the server)", message)


def cluster_state(server: Server, cluster_id: str, *, show_paths: bool) -> dict[str, Any]:
    """How the cluster's delivered Secrets stand, by state, and its sync error in words
    (without the server's file paths unless `show_paths`)."""
    manager = server.sync
    if manager is None:
        return {"sync": "off", "summary": {}, "error": ""}
    error = manager.statuses.errors().get(cluster_id) or ""
    return {
        "sync": "on",
        "synced_by": manager.synced_by,
        "summary": manager.statuses.cluster_counts(cluster_id),
        "error": error if show_paths else without_paths(error),
    }


def status_of(server: Server, credential: Any, *, show_paths: bool = True) -> dict[str, Any]:
    """Where a credential's Secrets stand (the credential's visibility is the caller's check);
    the cluster's error without the server's file paths unless `show_paths` (admins)."""
    manager = server.sync
    if manager is None:
        return {"credential": credential.id, "sync": "off", "items": [], "summary": {}}
    items = manager.statuses.of(credential.id)
    summary: dict[str, int] = dict.fromkeys(SyncState, 0)
    for status in items:
        summary[status.state] += 1
    error = manager.statuses.errors().get(credential.cluster_id)
    if error and not show_paths:
        error = without_paths(error)
    if credential.state != "active":
        note = "inactive: its Secrets are removed"
    elif error:
        note = f"the cluster cannot be synced: {error}"
    elif not items:
        note = "no namespace of its scope is known in the cluster yet"
    else:
        note = ""
    return {
        "credential": credential.id,
        "sync": "on",
        "synced_by": manager.synced_by,
        "cluster_error": error,
        "note": note,
        "summary": summary,
        "items": [s.as_dict() for s in items],
    }
