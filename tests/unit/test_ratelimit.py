"""core/ratelimit.py: token buckets per key, one row per sequence of events."""

from __future__ import annotations

import pytest

from pullkeeper.core.ratelimit import TokenBuckets

# (name, rate per second, burst, events as KEY@SECONDS, answers: + allowed, - refused)
CASES = [
    ("burst, then refused", 1.0, 3, "a@0 a@0 a@0 a@0 a@0", "+++--"),
    ("keys are apart", 1.0, 1, "a@0 b@0 a@0 b@0", "++--"),
    ("one token a second", 1.0, 1, "a@0 a@0.5 a@1 a@1.5", "+-+-"),
    ("refills up to the burst only", 1.0, 2, "a@0 a@0 a@100 a@100 a@100", "++++-"),
    ("a refused event takes nothing", 0.5, 1, "a@0 a@1 a@2", "+-+"),
    ("per minute", 3 / 60, 3, "ns@0 ns@1 ns@2 ns@3 ns@19 ns@21", "+++--+"),
    ("a clock that steps back refills nothing", 1.0, 1, "a@10 a@5 a@6 a@11", "+--+"),
]


@pytest.mark.parametrize(
    ("rate", "burst", "events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_take(rate: float, burst: int, events: str, expected: str) -> None:
    buckets = TokenBuckets(rate, burst)
    answers = []
    for event in events.split():
        key, _, at = event.partition("@")
        answers.append("+" if buckets.take(key, float(at)) else "-")
    assert "".join(answers) == expected


def test_full_buckets_are_forgotten_once_many_keys_are_held() -> None:
    buckets = TokenBuckets(1.0, 1)
    for i in range(5000):
        buckets.take(f"ns-{i}", float(i))  # each key's bucket is full again a second later
    assert len(buckets) <= 1025
    busy = TokenBuckets(1.0, 1)
    for i in range(1500):
        busy.take(f"ns-{i}", 0.0)  # all at once: none has refilled, none is forgotten
    assert len(busy) == 1500
    assert [busy.take(f"ns-{i}", 0.0) for i in range(3)] == [False] * 3  # still counted
    assert busy.take("ns-0", 1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_bucket_that_never_allows_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBuckets(rate, burst)
