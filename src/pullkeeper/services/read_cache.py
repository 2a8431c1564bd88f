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
(answers under an older id are never asked for again and age out). An answer is kept at
most `max_age` seconds even with no change: what it says of time (a cloud token's state,
valid, alert or expired) moves on its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from pullkeeper.services.actor import Actor

__all__ = ["ReadCache"]


def _rights(actor: Actor) -> Hashable:
    """What decides what the actor is shown: admin or viewer, and their project roles."""
    return (actor.is_admin, actor.viewer, tuple(sorted(actor.projects.items())))


class ReadCache:
    def __init__(
        self,
        revision: Callable[[], int],
        size_bytes: int = 32 << 20,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._revision = revision  # the store's newest committed change
        self.size_bytes, self.max_age, self._clock = size_bytes, max_age, clock
        self.hits = self.misses = 0
        self._kept: OrderedDict[Hashable, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def answer(self, actor: Actor, question: Hashable, make: Callable[[], bytes]) -> bytes:
        """The kept answer to the question for this actor at the store's revision, else the
        one `make` gives (reading the store after the revision was read), kept."""
        key = (self._revision(), _rights(actor), question)
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[1] < self.max_age:
                self._kept.move_to_end(key)
                self.hits += 1
                return kept[0]
        made = make()
        with self._lock:
            self.misses += 1
            if len(made) <= self.size_bytes:
                old = self._kept.pop(key, None)
                self._bytes += len(made) - (len(old[0]) if old else 0)
                self._kept[key] = (made, now)
                while self._bytes > self.size_bytes:
                    self._bytes -= len(self._kept.popitem(last=False)[1][0])
        return made
