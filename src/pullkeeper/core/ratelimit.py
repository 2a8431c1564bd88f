"""Token buckets per key: each key may spend `burst` events at once and `rate` a second after.

A bucket starts full, refills continuously up to `burst`, and an event takes one token; an
event that finds less than one is refused and takes nothing. Pure: the caller reads the
clock. A bucket that has refilled is the same as none, so full ones are forgotten once many
keys are held: the memory follows the keys that are busy now, not every key ever seen.
"""

from __future__ import annotations

from collections.abc import Hashable

_PRUNE_AT = 1024  # keys held before the full buckets are first forgotten


class TokenBuckets:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst = rate, burst
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)
        self._prune_at = _PRUNE_AT

    def _tokens(self, key: Hashable, now: float) -> tuple[float, float]:
        """The key's tokens at `now`, and the time they are counted at (never earlier than
        before: a clock that steps back refills nothing)."""
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        if now <= at:
            return tokens, at
        return min(float(self.burst), tokens + (now - at) * self.rate), now

    def take(self, key: Hashable, now: float) -> bool:
        """Whether an event of `key` at `now` (seconds, a monotonic clock) fits; if so it is
        counted."""
        tokens, at = self._tokens(key, now)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, at)
        if len(self._buckets) > self._prune_at:
            self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now)[0] >= self.burst]
        for key in full:
            del self._buckets[key]
        # As many busy keys again before the next look: a look costs the keys it scans.
        self._prune_at = max(_PRUNE_AT, 2 * len(self._buckets))

    def __len__(self) -> int:
        """How many keys are held."""
        return len(self._buckets)
