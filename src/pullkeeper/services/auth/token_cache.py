"""The token cache: the actors of recently authenticated API tokens, kept for a short time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from pullkeeper.services.actor import Actor
from pullkeeper.services.auth.hashing import token_hash
from pullkeeper.store.models import utcnow


class TokenCache:
    """Actors of recently seen tokens, so most requests skip three queries.

    Entries live `ttl` seconds at most and never past the token's expiry; the
    server clears the cache on every write it commits, so a revocation or a
    role change takes effect at once in this process, and within `ttl` in other
    processes sharing the store. `clock` measures the `ttl` (seconds; a test gives
    one it moves on itself).
    """

    MAX = 10_000

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[Actor, datetime | None, float]] = {}
        self._lock = threading.Lock()
        # Bumped by clear(): an actor read before a write must not be stored after it.
        self.generation = 0

    def get(self, token: str, source: str) -> Actor | None:
        key = token_hash(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        actor, expires_at, until = entry
        if self._clock() >= until or (expires_at is not None and expires_at <= utcnow()):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return replace(actor, source=source)

    def put(self, token: str, actor: Actor, expires_at: datetime | None, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.MAX:
                self._entries.clear()
            self._entries[token_hash(token)] = (actor, expires_at, self._clock() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
