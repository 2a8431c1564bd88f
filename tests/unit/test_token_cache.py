"""The cache of authenticated actors: bounded by its time, the token's expiry and writes."""

from __future__ import annotations

import time
from datetime import timedelta

from pullkeeper.services.actor import Actor
from pullkeeper.services.auth import TokenCache
from pullkeeper.store.models import utcnow

ALICE = Actor("u1", "alice", projects={"p1": "member"}, source="10.0.0.1")
TOKEN = "pk_unit-test-token-0123456789"


def test_a_hit_carries_the_new_requests_source() -> None:
    cache = TokenCache(60)
    cache.put(TOKEN, ALICE, None, cache.generation)
    hit = cache.get(TOKEN, "10.0.0.2")
    assert hit is not None and (hit.username, hit.source) == ("alice", "10.0.0.2")
    assert cache.get("pk_another-token", "10.0.0.2") is None


def test_entries_end_with_the_cache_time_and_with_the_tokens_expiry() -> None:
    short = TokenCache(0.2)
    short.put(TOKEN, ALICE, None, short.generation)
    assert short.get(TOKEN, "") is not None
    time.sleep(0.25)
    assert short.get(TOKEN, "") is None

    long = TokenCache(60)
    long.put(TOKEN, ALICE, utcnow() + timedelta(seconds=0.2), long.generation)
    assert long.get(TOKEN, "") is not None
    time.sleep(0.25)
    assert long.get(TOKEN, "") is None


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
