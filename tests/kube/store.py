"""Objects in memory, one global resourceVersion counter (as etcd's revision), and a bounded
history of changes for watches to resume from.

Every object handed in or out is a deep copy, so no caller can change the store behind its back.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.kube.resources import RESOURCES

Key = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED, MODIFIED or DELETED
    resource: str
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Store:
    # Real clusters start far from 0; a client must not treat small numbers as special.
    FIRST_RV = 1000

    def __init__(self, history_limit: int = 1000) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {r.plural: {} for r in RESOURCES}
        self._rv = self.FIRST_RV
        self._history: deque[Change] = deque(maxlen=history_limit)
        # Changes with rv <= _compacted are no longer in the history.
        self._compacted = self.FIRST_RV
        self._listeners: list[Callable[[Change], None]] = []
        self.closed = False

    @property
    def rv(self) -> int:
        with self.cond:
            return self._rv

    @property
    def compacted_rv(self) -> int:
        with self.cond:
            return self._compacted

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call `listener` (under the store lock: keep it short) after every change."""
        with self.cond:
            self._listeners.append(listener)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self._objects[resource].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects in key order (namespace, then name), as etcd returns them."""
        with self.cond:
            items = sorted(self._objects[resource].items())
            return [
                copy.deepcopy(obj) for (ns, _), obj in items if namespace is None or ns == namespace
            ]

    def write(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace `obj`, stamping the next resourceVersion; returns the stored copy."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self.cond:
            old = self._objects[resource].get(key)
            self._rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[resource][key] = stored
            self._record("MODIFIED" if old is not None else "ADDED", resource, key, stored, old)
            return copy.deepcopy(stored)

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            old = self._objects[resource].pop((namespace, name), None)
            if old is None:
                return None
            self._rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._record("DELETED", resource, (namespace, name), gone, old)
            return copy.deepcopy(gone)

    def keep_history(self, limit: int) -> None:
        """Keep only the last `limit` changes from now on: a watch that resumes from before
        them is answered 410 Gone, as after an etcd compaction."""
        with self.cond:
            kept = list(self._history)
            if len(kept) > limit:
                self._compacted = kept[-limit - 1].rv
            self._history = deque(kept[-limit:], maxlen=limit)

    def _record(
        self,
        kind: str,
        resource: str,
        key: Key,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        if len(self._history) == self._history.maxlen and self._history:
            self._compacted = self._history[0].rv
        change = Change(self._rv, kind, resource, key[0], obj, old)
        self._history.append(change)
        for listener in self._listeners:
            listener(change)
        self.cond.notify_all()

    def changes_after(self, rv: int) -> list[Change] | None:
        """Changes with a resourceVersion above `rv`, oldest first; None once `rv` has been
        compacted away (a watch from there answers 410 Gone)."""
        with self.cond:
            if rv < self._compacted:
                return None
            # The history is in resourceVersion order: walk back from the newest change.
            newer = list(itertools.takewhile(lambda c: c.rv > rv, reversed(self._history)))
            newer.reverse()
            return newer

    def compact(self) -> None:
        """Forget the whole history, as etcd compaction does: older watches get 410 Gone."""
        with self.cond:
            self._history.clear()
            self._compacted = self._rv

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
