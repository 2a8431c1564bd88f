"""Three replicas of `pullkeeper serve` on one PostgreSQL, syncing into the real Kubernetes API
server, under load for two minutes while the one that syncs is killed (SIGKILL) or stopped
(SIGTERM) and started again, in turn (tests/server_ops/soak.py says what runs).

Each replica runs in a UTS namespace with a host name of its own, as in a pod of its own: a
killed holder of the sync lease is not seen gone by the others, whose wait for its lease to
run out is what is measured. Asserted: no acknowledged write lost or unreadable, in the store
and in the delivered Secrets; the lease taken within its documented time after a kill and a
stop; Secret writes from one replica at a time (told apart by their User-Agent in the API
server's audit log), none after a process stopped; every review a running replica was sent
answered, errors only for requests in flight to a stopped process; and each webhook's index
following the others' writes within `admission_refresh_seconds` (plus slack).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.kube.real import RealCluster
from tests.tools import missing

from . import soak
from .replicas import Fleet, Timing

pytestmark = pytest.mark.soak

TIMING = Timing()
PLAN = soak.Plan(duration=120.0, kill_interval=3.0)


def test_replicas_keep_their_promises_while_the_syncing_one_is_killed_or_stopped(
    tmp_path: Path, postgres: Callable[[str], str], real_kube: RealCluster
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        missing("root and unshare (util-linux): each replica runs under a host name of its own")
    fleet = Fleet(tmp_path, postgres("soak"), 3, TIMING)
    try:
        fleet.start()
        kubeconfig = str(real_kube.kubeconfig(tmp_path / "kubeconfig"))
        with fleet.logs_on_failure():
            report = soak.run(fleet, real_kube, kubeconfig, PLAN)
            print(f"\n{soak.table(report)}")
            _check(fleet, report)
    finally:
        fleet.stop_all()


def _check(fleet: Fleet, report: soak.Report) -> None:
    assert not report.final_problems, report.final_problems
    assert report.ledger.acked > 50, f"only {report.ledger.acked} acknowledged writes"

    # Several kills and stops, each handed over within its bound.
    kills, stops = report.kills("SIGKILL"), report.kills("SIGTERM")
    assert kills >= 2 and stops >= 2, f"{kills} kills and {stops} stops handed over"
    for h in report.handovers:
        bound = TIMING.after_kill if h.how == "SIGKILL" else TIMING.after_stop
        assert h.seconds <= bound, f"{h}: the lease was taken {h.seconds:.2f} s after, not {bound}"

    # One writer at a time, every one a holder of the lease; the check saw several of them.
    assert not report.audit_problems, report.audit_problems
    writers = {w.identity for w in report.writes}
    assert len(writers) >= 3, f"Secret writes by {writers} only"

    # Nothing failed; what a stop cut off is at most one request per thread and stop.
    assert not report.tally.failures, report.tally.failures[:20]
    stopped = sum(1 for r in fleet.replicas for life in r.lives if life.how.startswith("SIG"))
    threads = {
        "write": PLAN.writers + 1,  # the probe creates too
        "read": PLAN.readers + PLAN.writers,  # writers read their edits back
        "admission": PLAN.reviewers + 1,
    }
    for kind, count in threads.items():
        assert report.tally.answered[kind] > 100, f"{kind}: {report.tally.answered[kind]}"
        assert report.tally.cut[kind] <= stopped * count, (kind, report.tally.cut[kind], stopped)
    statuses = [life.status for r in fleet.replicas for life in r.lives if life.how == "SIGTERM"]
    assert set(statuses) == {0}, f"exit statuses after SIGTERM: {statuses}"

    # Each webhook's index follows the others' writes within its refresh (and slack).
    assert len(report.delays) >= 20, f"{len(report.delays)} index delays measured"
    assert max(report.delays) <= TIMING.index_delay, sorted(report.delays)[-5:]
