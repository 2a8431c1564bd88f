"""The product's Secret writes, as the Kubernetes API server's audit log records them, told
apart by the User-Agent each process sends (`pullkeeper/VERSION (HOST:PID)`), and whether
they came from one replica at a time: each writer a holder of the sync lease, its writes
ended before the next writer's began, none after its process ended."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from tests.kube.real import WRITE_VERBS, RealCluster

from .replicas import Fleet, Holding

# A request sent to a process just before a SIGKILL may be read by the API server just after.
LAST_WORDS = 1.0


@dataclass(frozen=True)
class Write:
    """A Secret write of the product, from the API server's audit log."""

    identity: str  # from its User-Agent
    received: float
    done: float
    what: str


_AGENT = re.compile(r"^pullkeeper/\S+ \(([^()\s]+)\)$")


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def secret_writes(cluster: RealCluster, since: int, namespaces: Collection[str]) -> list[Write]:
    """The product's Secret writes in these namespaces from byte `since` of the audit log on,
    in the order received."""
    events, _ = cluster.plane.audit("pullkeeper", since)
    writes = []
    for e in events:
        ref = e.get("objectRef") or {}
        if (
            e["verb"] not in WRITE_VERBS
            or ref.get("resource") != "secrets"
            or ref.get("namespace") not in namespaces
        ):
            continue
        agent = _AGENT.match(e.get("userAgent", ""))
        writes.append(
            Write(
                agent.group(1) if agent else f"? {e.get('userAgent')}",
                _time(e["requestReceivedTimestamp"]),
                _time(e["stageTimestamp"]),
                f"{e['verb']} {ref.get('namespace')}/{ref.get('name')}",
            )
        )
    return sorted(writes, key=lambda w: w.received)


def runs(writes: list[Write]) -> list[list[Write]]:
    """The writes in runs of one writer each."""
    out: list[list[Write]] = []
    for w in writes:
        if out and out[-1][-1].identity == w.identity:
            out[-1].append(w)
        else:
            out.append([w])
    return out


def audit_problems(writes: list[Write], fleet: Fleet, holders: list[Holding]) -> list[str]:
    """What the writes show out of turn: none when one lease holder at a time wrote."""
    problems = []
    held = {h.identity for h in holders}
    by_run = runs(writes)
    seen: Counter[str] = Counter(run[0].identity for run in by_run)
    for identity, count in seen.items():
        found = fleet.life_of(identity)
        if found is None:
            problems.append(f"writes by {identity}, no replica's process")
            continue
        if count > 1:
            problems.append(f"{identity} wrote in {count} runs, others' writes between them")
        if identity not in held:
            problems.append(f"{identity} wrote but was never seen holding the sync lease")
        life = found[1]
        if life.stopped is not None and life.how != "end":
            end = life.stopped + LAST_WORDS
            late = [w for w in writes if w.identity == identity and w.received > end]
            if late:
                problems.append(f"{identity} wrote after it stopped ({life.how}): {late[:3]}")
    for before, after in itertools.pairwise(by_run):
        if before[-1].done > after[0].received:
            problems.append(
                f"{after[0].identity} began writing ({after[0].what}) before "
                f"{before[-1].identity}'s last write ended ({before[-1].what})"
            )
    return problems
