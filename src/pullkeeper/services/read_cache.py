"""Answers to reads, kept until the store changes.

A page of a 10,000-credential listing costs milliseconds of SQL and conversion; the
same question asked again with nothing changed need not. An answer is kept under the
change log's newest committed id (every write a listing can show moves it, a check's
result included: store/changes.py), the asker's rights (not their name: admins share
their answers) and the question. A read first reads that id, one indexed query on a
pooled connection and no session, so a change any process committed is seen at once; a
kept answer comes back as the bytes it was encoded to.

The id is read before the answer is made: an answer may show more than its id says, never
less, so once a change is committed no reader is given an answer made before it. Per
process, at most `size_bytes` of answers, the least recently used forgotten first
(answers under an older id are never asked for again and age out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from pullkeeper.services.actor import Actor

__all__ = ["ReadCache"]


def _rights(actor: Actor) -> Hashable:
    """What decides what the actor is shown: admin or viewer, and their project roles."""
    return (actor.is_admin, actor.viewer, tuple(sorted(actor.projects.items())))


class ReadCache:
    def __init__(self, revision: Callable[[], int], size_bytes: int = 32 << 20) -> None:
        self._revision = revision  # the store's newest committed change
        self.size_bytes = size_bytes
        self.hits = self.misses = 0
        self._kept: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def answer(self, actor: Actor, question: Hashable, make: Callable[[], bytes]) -> bytes:
        """The kept answer to the question for this actor at the store's revision, else the
        one `make` gives (reading the store after the revision was read), kept."""
        key = (self._revision(), _rights(actor), question)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return kept
        made = make()
        with self._lock:
            self.misses += 1
            if key not in self._kept and len(made) <= self.size_bytes:
                self._kept[key] = made
                self._bytes += len(made)
                while self._bytes > self.size_bytes:
                    self._bytes -= len(self._kept.popitem(last=False)[1])
        return made
