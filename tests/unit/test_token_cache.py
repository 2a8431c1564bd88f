"""The cache of authenticated actors: bounded by its time, the token's expiry and writes."""

from __future__ import annotations

from datetime import timedelta

from pullkeeper.services.actor import Actor
from pullkeeper.services.auth import TokenCache
from pullkeeper.store.models import utcnow

ALICE = Actor("u1", "alice", projects={"p1": "member"}, source="10.0.0.1")
TOKEN = "pk_unit-test-token-0123456789"


class Clock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_hit_carries_the_new_requests_source() -> None:
    cache = TokenCache(60)
    cache.put(TOKEN, ALICE, None, cache.generation)
    hit = cache.get(TOKEN, "10.0.0.2")
    assert hit is not None and (hit.username, hit.source) == ("alice", "10.0.0.2")
    assert cache.get("pk_another-token", "10.0.0.2") is None


def test_entries_end_with_the_cache_time_and_with_the_tokens_expiry() -> None:
    clock = Clock()
    cache = TokenCache(60, clock)
    cache.put(TOKEN, ALICE, None, cache.generation)
    clock.now += 59.5
    assert cache.get(TOKEN, "") is not None
    clock.now += 0.5
    assert cache.get(TOKEN, "") is None

    # The token's expiry is a time of day: one still ahead keeps the entry, one just
    # passed ends it though the cache time has not.
    cache.put(TOKEN, ALICE, utcnow() + timedelta(minutes=5), cache.generation)
    assert cache.get(TOKEN, "") is not None
    cache.put(TOKEN, ALICE, utcnow() - timedelta(seconds=1), cache.generation)
    assert cache.get(TOKEN, "") is None


def test_an_actor_read_before_a_write_is_not_kept_after_it() -> None:
    cache = TokenCache(60)
    read_at = cache.generation
    cache.clear()  # a write committed while the actor was being read
    cache.put(TOKEN, ALICE, None, read_at)
    assert cache.get(TOKEN, "") is None
    cache.put(TOKEN, ALICE, None, cache.generation)
    assert cache.get(TOKEN, "") is not None


def test_a_zero_cache_time_keeps_nothing() -> None:
    cache = TokenCache(0)
    cache.put(TOKEN, ALICE, None, cache.generation)
    assert cache.get(TOKEN, "") is None
