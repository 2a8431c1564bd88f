"""The token refresher at scale: --creds (default 1,000) credentials holding an AWS identity,
all due at once, refreshed in one pass of Refresher.run_once, then delivered by the sync.

A real Server (SQLite store in a temporary data directory) with one cluster on the tests'
fake API server (tests/kube, as benchmarks/sync_converge.py --api fake runs it) holding
--namespaces namespaces (default 50) besides its own (`default` gets the cluster-scoped
credentials too; kube-system none). Of the credentials, --cluster-scoped (default 20) are
cluster-scoped, each delivered into every namespace; the rest are namespace-scoped, spread
evenly over the namespaces. Each has its own ECR address (an account of its own: one
registry address per scope), made with a first 12-hour token.

Every credential is made due at the same instant T0, the pass's start: its token's times
moved so that its refresh time (the product's own, 40 to 50 per cent of the token's life)
is T0, keeping its slack to half the token's life. That is the worst burst (the jitter
spreads tokens made together over 1.2 hours). The passes, in turn, on the same store:

1. moto: the exchanges go to the AWS stand-in (tests/cloud/aws.py: moto's ECR, in this
   process, on loopback), each a signed HTTP request of its own;
2. injected: the exchange is a function returning a new token at once, so what is left is
   the refresher's and the store's own work;
3. same: the injected exchange gives each credential its current token again (nothing
   delivered should change).

For each pass: wall time, process CPU per credential (the moto pass includes the stand-in's,
which runs in this process) and the refreshing threads' own CPU per credential (the
exchange's client and the store's work), the refresher's results, store writes (SQL
INSERT/UPDATE/DELETE statements and committed transactions), and the lateness of each
credential: the time its new token was committed minus its token_refresh_at (T0),
p50/p95/max, and how many landed after half their old token's life. The sync is stopped
during a pass (its figures are the refresher's own) and started after it: the Secret writes
it makes, expected namespaces x changed tokens, and the time until they are all made.

Run: .venv/bin/python benchmarks/token_refresh.py [--creds 1000] [--namespaces 50]
     [--cluster-scoped 20] [--workers 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cloud import aws  # noqa: E402
from tests.kube.fake_apiserver import FakeApiServer  # noqa: E402

from pullkeeper.core import delivery  # noqa: E402
from pullkeeper.core.cloud import AwsIdentity, AzureIdentity, CloudLogin, Token  # noqa: E402
from pullkeeper.services import cloud_tokens, clusters, credentials, sync  # noqa: E402
from pullkeeper.services.actor import SYSTEM  # noqa: E402
from pullkeeper.services.server import Server  # noqa: E402
from pullkeeper.services.token_refresh import Refresher  # noqa: E402
from pullkeeper.settings import Settings  # noqa: E402
from pullkeeper.store.models import Credential, utcnow  # noqa: E402

CLUSTER = "bench"
LIFETIME = timedelta(hours=12)  # ECR's
KEY = ("AKIABENCH00000000000", "bench-secret-access-key")
WRITES = ("INSERT", "UPDATE", "DELETE")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def address(i: int) -> str:
    return f"{100000000000 + i}.dkr.ecr.eu-west-1.amazonaws.com"


@dataclass
class World:
    args: argparse.Namespace
    base: Path
    server: Server
    fake: FakeApiServer
    namespaces: list[str]  # those a cluster-scoped credential reaches
    fan_out: dict[str, int]  # credential id -> namespaces its Secret is delivered into
    manager: sync.SyncManager | None = None

    def managed(self) -> int:
        return sum(
            1
            for s in self.fake.objects("secrets")
            if (s["metadata"].get("labels") or {}).get(delivery.MANAGED_BY) == delivery.MANAGER
        )

    def start_sync(self) -> None:
        self.manager = sync.start(self.server)

    def stop_sync(self) -> None:
        if self.manager is not None:
            self.manager.stop()
            self.server.on_change.remove(self.manager.changed)
            self.manager = None


def build(args: argparse.Namespace, base: Path) -> World:
    """The namespaces in the fake API server, then the cluster and the credentials in a store,
    then the sync started and converged (every credential's first token delivered)."""
    fake = FakeApiServer().start()
    names = [f"team-{i:03d}" for i in range(args.namespaces)]
    for name in names:
        fake.create("namespaces", {"metadata": {"name": name}})
    server = Server.open(
        Settings(
            data=base / "data",
            sync_poll_seconds=0.5,
            sync_resync_seconds=3600,
            token_refresh_workers=args.workers,
        )
    )
    kubeconfig = fake.kubeconfig(base / "bench.kubeconfig")
    reached = [
        n["metadata"]["name"]
        for n in fake.objects("namespaces")
        if n["metadata"]["name"] not in delivery.DEFAULT_EXCLUDED
    ]
    fan_out: dict[str, int] = {}
    issued = utcnow()
    with server.transaction() as s:
        cluster = clusters.create_cluster(s, SYSTEM, CLUSTER, kubeconfig=str(kubeconfig))
        for name in names:
            clusters.put_namespace(s, SYSTEM, cluster, name, None)
    for start in range(0, args.creds, 100):
        with server.transaction() as s:
            cluster = clusters.get_cluster(s, SYSTEM, CLUSTER)
            for i in range(start, min(start + 100, args.creds)):
                wide = i < args.cluster_scoped
                ns = None if wide else names[i % len(names)]
                kind = "cluster" if wide else "namespace"
                scope = credentials.resolve_scope(s, SYSTEM, kind, cluster, None, ns)
                identity = cloud_tokens.parse(
                    "ecr", address(i), "aws", {"access_key_id": KEY[0]}, KEY[1]
                )
                first = Token("AWS", secrets.token_urlsafe(48), issued, issued + LIFETIME)
                login = CloudLogin("aws", cloud_tokens.shown(identity, KEY[1]), KEY[1], first)
                spec = credentials.CredentialSpec(
                    name=f"ecr-{i:04d}",
                    scope=scope,
                    provider="ecr",
                    server=address(i),
                    username="",
                    cloud=login,
                )
                made = credentials.create(s, SYSTEM, server.vault, spec)
                fan_out[made.id] = len(reached) if wide else 1
    w = World(args, base, server, fake, reached, fan_out)
    w.start_sync()
    wait_for(lambda: w.managed() == sum(fan_out.values()), 600, "the first delivery")
    w.stop_sync()
    return w


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """The perf_counter time at which check() was first seen true."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if check():
            return now
        if now > deadline:
            sys.exit(f"FAIL: not within {timeout:.0f} s: {what}")
        time.sleep(0.02)


def all_due_at(w: World, t0: datetime) -> dict[str, datetime]:
    """Every credential's token times moved so that its refresh time is t0; each one's half
    life (the latest its refresh should land)."""
    half: dict[str, datetime] = {}
    with w.server.transaction() as s:
        for cred in s.scalars(select(Credential).where(Credential.identity_kind.is_not(None))):
            assert cred.token_refresh_at and cred.token_issued_at and cred.token_expires_at
            shift = cred.token_refresh_at - t0
            cred.token_issued_at -= shift
            cred.token_expires_at -= shift
            cred.token_refresh_at = t0
            half[cred.id] = (
                cred.token_issued_at + (cred.token_expires_at - cred.token_issued_at) / 2
            )
    return half


class Timed(Refresher):
    """The refresher, noting when each credential's refresh was committed, its result, and
    the CPU time of the thread that refreshed it (the exchange's client and the store's
    work, not the stand-in's, which answers on threads of its own)."""

    def __init__(self, server: Server, **kw: Any) -> None:
        super().__init__(server, leading=lambda: True, **kw)
        self.landed: dict[str, tuple[datetime, str]] = {}
        self.thread_cpu = 0.0
        self._landed_lock = threading.Lock()

    def refresh(self, credential_id: str, now: datetime) -> str:
        cpu0 = time.thread_time()
        result = super().refresh(credential_id, now)
        cpu = time.thread_time() - cpu0
        with self._landed_lock:
            self.landed[credential_id] = (utcnow(), result)
            self.thread_cpu += cpu
        return result


@contextmanager
def sql_writes(server: Server) -> Iterator[Counter[str]]:
    """Counts of the write statements run, by verb and table ("UPDATE credentials"), and of
    the transactions committed that wrote ("commit")."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def statement(conn: Any, _cur: Any, text: str, *_: Any) -> None:
        words = text.split()
        if words and words[0].upper() in WRITES:
            table = words[2] if words[1].upper() in ("INTO", "FROM") else words[1]
            conn.info["wrote"] = True
            with lock:
                counts[f"{words[0].upper()} {table}"] += 1

    def commit(conn: Any) -> None:
        if conn.info.pop("wrote", False):
            with lock:
                counts["commit"] += 1

    engine = server.db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


@dataclass
class Pass:
    name: str
    seconds: float
    cpu: float
    refresher_cpu: float  # the refreshing threads' own
    results: Counter[str]
    sql: Counter[str]
    lateness: list[float]  # seconds, per credential
    late: int  # landed after half their token's life
    past_half: float  # seconds the latest of those landed after it
    slack: list[float]  # seconds from T0 to half each token's life
    secret_writes: int
    expected_writes: int
    deliver_seconds: float


def one_pass(w: World, name: str, refresher: Timed) -> Pass:
    t0 = utcnow()
    half = all_due_at(w, t0)
    cpu0 = cpu_seconds()
    with sql_writes(w.server) as sql:
        start = time.perf_counter()
        results = refresher.run_once()
        seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    landed = refresher.landed
    lateness = [(at - t0).total_seconds() for at, _ in landed.values()]
    past = [(at - half[cid]).total_seconds() for cid, (at, _) in landed.items()]
    late = sum(1 for x in past if x > 0)
    changed = [cid for cid, (_, result) in landed.items() if result == "refreshed"]
    expected = sum(w.fan_out[cid] for cid in changed)
    # The sync, started after the pass, delivers what changed.
    w.fake.reset_counts()
    start = time.perf_counter()
    w.start_sync()
    done = wait_for(
        lambda: w.fake.count("write", "secrets") >= expected, 600, f"{expected} Secret writes"
    )
    time.sleep(2.0)  # writes still to come are counted too
    writes = w.fake.count("write", "secrets")
    w.stop_sync()
    return Pass(
        name,
        seconds,
        cpu,
        refresher.thread_cpu,
        results,
        sql,
        lateness,
        late,
        max(0.0, *past),
        [(at - t0).total_seconds() for at in half.values()],
        writes,
        expected,
        done - start if expected else 0.0,
    )


class Exchanges:
    """Injected exchanges: a new token each call, or the credential's current one again."""

    def __init__(self) -> None:
        self.current: dict[str, str] = {}
        self._lock = threading.Lock()

    def new(self, _s: Server, where: str, _i: AwsIdentity | AzureIdentity | None, _k: str) -> Token:
        now = utcnow()
        token = Token("AWS", secrets.token_urlsafe(48), now, now + LIFETIME)
        with self._lock:
            self.current[where] = token.password
        return token

    def same(
        self, _s: Server, where: str, _i: AwsIdentity | AzureIdentity | None, _k: str
    ) -> Token:
        now = utcnow()
        with self._lock:
            return Token("AWS", self.current[where], now, now + LIFETIME)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print()
    print(title)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, tuple("-" * w for w in widths), *rows]:
        print(
            " | ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def report(w: World, passes: list[Pass]) -> None:
    n = w.args.creds
    table(
        f"One pass of Refresher.run_once over {n} credentials all due at once "
        f"({w.server.settings.token_refresh_workers} exchange threads)",
        (
            "exchange",
            "wall s",
            "creds/s",
            "CPU ms/cred",
            "refresher's",
            "results",
            "SQL write statements",
            "write commits",
            "late p50 s",
            "late p95 s",
            "late max s",
            "min slack s",
            "after half life",
            "max s past it",
        ),
        [
            (
                p.name,
                f"{p.seconds:.2f}",
                f"{n / p.seconds:.0f}",
                f"{p.cpu / n * 1000:.2f}",
                f"{p.refresher_cpu / n * 1000:.2f}",
                " ".join(f"{k} {v}" for k, v in sorted(p.results.items())),
                ", ".join(f"{v} {k}" for k, v in sorted(p.sql.items()) if k != "commit"),
                str(p.sql["commit"]),
                f"{statistics.median(p.lateness):.2f}",
                f"{pct(p.lateness, 0.95):.2f}",
                f"{max(p.lateness):.2f}",
                f"{min(p.slack):.0f}",
                str(p.late),
                f"{p.past_half:.1f}",
            )
            for p in passes
        ],
    )
    print(
        "(CPU: the whole process's, the AWS stand-in's included; refresher's: the refreshing "
        "threads' own)"
    )
    print(
        "(late: the new token's commit minus its token_refresh_at, T0 the pass's start; "
        "slack: from T0 to half the old token's life, the product's jitter, median "
        f"{statistics.median(passes[0].slack):.0f} s)"
    )
    own, shared = client_cpu_ms()
    print(
        f"an ECR client (no request), median of 20 interleaved: with a boto3 session of its own "
        f"{own:.1f} ms CPU, from the shared botocore session (as exchanges make them) "
        f"{shared:.1f} ms (x{own / shared:.0f})"
    )
    table(
        "The sync afterwards (started after the pass), on the fake API server",
        ("exchange", "Secret writes", "expected", "seconds to the last"),
        [
            (
                p.name,
                str(p.secret_writes),
                str(p.expected_writes),
                f"{p.deliver_seconds:.2f}",
            )
            for p in passes
        ],
    )
    print(
        f"(expected: the namespaces each changed token is delivered into; a cluster-scoped "
        f"credential reaches {len(w.namespaces)} namespaces, a namespace-scoped one 1)"
    )


def client_cpu_ms(runs: int = 20) -> tuple[float, float]:
    """CPU to make an ECR client (no request), median of `runs`, interleaved: with a boto3
    session of its own, and from one botocore session shared by every client (as
    cloud/ecr.py makes those given keys)."""
    import boto3  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    shared = botocore.session.get_session()
    keys = {"aws_access_key_id": KEY[0], "aws_secret_access_key": KEY[1]}
    where = {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}

    def own() -> None:
        boto3.session.Session(**keys, region_name="eu-west-1").client(
            "ecr", endpoint_url="http://127.0.0.1:9"
        )

    def from_shared() -> None:
        shared.create_client("ecr", **keys, **where)

    own(), from_shared()  # the imports and the first load of botocore's data are not counted
    costs: dict[Callable[[], None], list[float]] = {own: [], from_shared: []}
    for _ in range(runs):
        for make, spent in costs.items():
            cpu0 = cpu_seconds()
            make()
            spent.append((cpu_seconds() - cpu0) * 1000)
    return statistics.median(costs[own]), statistics.median(costs[from_shared])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creds", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--cluster-scoped", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="token_refresh_workers")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(
        f"scenario: {args.creds} ECR credentials, {args.cluster_scoped} cluster-scoped and "
        f"{args.creds - args.cluster_scoped} namespace-scoped, over {args.namespaces} namespaces"
    )
    base = Path(tempfile.mkdtemp(prefix="pk-token-bench-"))
    w: World | None = None
    try:
        w = build(args, base)
        passes = []
        with aws.serve(limit=3600) as stand_in:
            w.server.settings.cloud_aws_endpoint = stand_in.url
            print("pass 1: exchanges with the AWS stand-in (moto) ...", flush=True)
            passes.append(one_pass(w, "moto", Timed(w.server)))
            assert len(stand_in.issued) == args.creds, len(stand_in.issued)
        exchanges = Exchanges()
        print("pass 2: injected exchange, new tokens ...", flush=True)
        passes.append(one_pass(w, "injected, new", Timed(w.server, exchange=exchanges.new)))
        print("pass 3: injected exchange, the same tokens again ...", flush=True)
        passes.append(one_pass(w, "injected, same", Timed(w.server, exchange=exchanges.same)))
        report(w, passes)
    finally:
        if w is not None:
            w.stop_sync()
            w.server.close()
            w.fake.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
