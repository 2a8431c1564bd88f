"""Several replicas of `pullkeeper serve` on one PostgreSQL under load for minutes, the one that
syncs killed (SIGKILL) or stopped (SIGTERM) and started again, in turn: the long run of
tests/server_ops/test_replicas_soak.py (tests/server_ops/soak.py is the harness of both).

It starts PostgreSQL 15 (tests/pg.py) and a control plane (`scripts/kube up`: kube-apiserver
v1.34 with its audit log, etcd, the controllers), then --replicas `pullkeeper serve` processes,
each with its webhook listener, its own data directory and host name (a UTS namespace of its
own: needs root), one key source (PULLKEEPER_KEYS), sync_lease_seconds=3,
sync_poll_seconds=0.25 and admission_refresh_seconds=1, and one cluster on the API server.
Load threads spread over the running replicas: --writers create credentials (up to 8 each)
and change their passwords, keeping a ledger of what was acknowledged; --readers list and get
credentials; --reviewers post AdmissionReviews to every running replica's webhook; a probe
creates a credential through one replica every second or so and asks every other replica's
webhook until its index has it. Every --kill-interval seconds the replica that holds the sync
lease is killed or stopped (in turn); once another holds the lease it is started again.

Printed: requests answered per second by kind, requests cut by a stop (in flight to the
process) and failures (any other error); the lease handovers after a kill and after a stop
(seconds from the signal until another replica took the lease); the admission index's delay
(from a write's acknowledgement by one replica until another's webhook answers with it); the
Secret writes the API server's audit log shows (told apart by User-Agent: runs of one writer);
and the acknowledged writes checked afterwards (the store renders each credential's last
acknowledged password, and its Secrets hold it). Any failure, a Secret write out of turn or a
lost write makes the exit status 1.

Run (as root): .venv/bin/python benchmarks/replicas_soak.py [--duration 600] [--replicas 3]
     [--kill-interval 10] [--writers 2] [--readers 1] [--reviewers 2] [--pause 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import pg  # noqa: E402
from tests.kube.real import ControlPlane, RealCluster  # noqa: E402
from tests.server_ops import soak  # noqa: E402
from tests.server_ops.replicas import Fleet, Timing  # noqa: E402


def _database(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{base}/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--kill-interval", type=float, default=10, help="seconds between a restart and a kill"
    )
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between requests")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        sys.exit("replicas_soak.py: needs root and unshare (a host name per replica)")
    # Stopped early, it stops what it started (the load threads are daemons).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    plan = soak.Plan(
        duration=args.duration,
        kill_interval=args.kill_interval,
        writers=args.writers,
        readers=args.readers,
        reviewers=args.reviewers,
        pause=args.pause,
    )
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.replicas} replicas, {plan}"
    )
    with tempfile.TemporaryDirectory(prefix="pk-bench-soak-") as tmp, pg.postgres() as url:
        base = Path(tmp)
        plane = ControlPlane(base / "kube").start()
        fleet = Fleet(base, _database(url, "soak"), args.replicas, Timing())
        try:
            fleet.start()
            kubeconfig = str(plane.kubeconfig(base / "kubeconfig"))
            report = soak.run(fleet, RealCluster(plane), kubeconfig, plan)
        finally:
            fleet.stop_all()
            plane.stop()
        print(soak.table(report))
        problems = report.tally.failures + report.audit_problems + report.final_problems
        for problem in problems[:50]:
            print(f"PROBLEM: {problem}")
        if problems:
            print(fleet.logs())
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
