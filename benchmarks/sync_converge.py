"""The Kubernetes sync against a real API server and the tests' fake: converging, resyncing,
new namespaces.

A real Server (SQLite store in a temporary data directory) is set up through
the service layer, with one cluster reached through a kubeconfig pointing at
the API server: with --api real, kube-apiserver v1.34, etcd and
kube-controller-manager started by `scripts/kube` (requests counted from the
API server's audit log, user pullkeeper); with --api fake, `tests/kube`'s fake
API server (the real REST protocol on loopback, requests counted by the fake);
--api both (the default) runs the real one, then the fake. The scenario: --namespaces namespaces
(default 2,000) spread over --projects projects (default 50), each labelled
`pullkeeper.io/project=<project>`; --creds-per-project project-scoped
credentials per project (default 5); and --cluster-creds cluster-scoped ones
(default 2), which go to every namespace but the excluded ones (kube-system).

1. Converging from empty: the namespaces are created in the API server first,
   then the cluster, projects and credentials are registered, then the sync is
   started; timed until every expected Secret exists (the fake's store is
   looked at every 20 ms; for the real server, the audit log's count of
   Secret creates every 100 ms, then one list confirms). The API requests the
   sync issued, by verb; writes per Secret created; list requests and list
   operations (a list of many pages is one operation of several requests,
   pages of 500). The same is run at
   --small namespaces (default 200) first, to compare list calls.
2. No-op resync: the sync is stopped and started again with
   sync_resync_seconds=--resync (default 2) on the converged cluster; its
   first pass and the next --resyncs (default 3) full resyncs, counting writes
   and list requests. (Run last, after 3.)
3. New namespaces: after convergence, --new namespaces (default 50) are
   created one at a time through the HTTP API (POST /api/v1/namespaces, as
   kubectl does); for each, the time until all of its Secrets exist (looked up
   every 5 ms: in the fake's store, or with GETs on the real server).

The fake is the tests' (tests/kube), with a longer watch history
(--history), so that watches resume after convergence instead of listing
everything again.

CPU is this process's (the store and the sync run in it, and the fake API
server when it is the fake) and, separately, the sync loop thread's own (from
/proc/self/task); peak RSS is the process's (ru_maxrss). The real API server's
watch requests are counted when they end (the audit log's last stage).

Run: .venv/bin/python benchmarks/sync_converge.py [--api both|real|fake]
     [--namespaces 2000] [--projects 50] [--creds-per-project 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kube.fake_apiserver import (  # noqa: E402
    WRITE_VERBS,
    FakeApiServer,
)
from tests.kube.real import ControlPlane, RealCluster  # noqa: E402

from pullkeeper.core import delivery  # noqa: E402
from pullkeeper.services import clusters, credentials, sync  # noqa: E402
from pullkeeper.services.actor import SYSTEM  # noqa: E402
from pullkeeper.services.server import Server  # noqa: E402
from pullkeeper.settings import Settings  # noqa: E402

VERBS = ("list", "watch", "get", "create", "update", "patch", "delete")
TICKS = os.sysconf("SC_CLK_TCK")
CLUSTER = "bench"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def thread_cpu(name: str) -> float:
    """utime + stime of this process's thread called `name` (0 when there is none)."""
    for t in threading.enumerate():
        if t.name == name and t.native_id is not None:
            stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICKS
    return 0.0


def wait_for(check: Callable[[], bool], timeout: float, every: float, what: str) -> float:
    """The perf_counter time at which check() was first seen true."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if check():
            return now
        if now > deadline:
            sys.exit(f"FAIL: not within {timeout:.0f} s: {what}")
        time.sleep(every)


@dataclass(frozen=True)
class Rec:
    """One request of the sync's: its Kubernetes verb, resource and query."""

    verb: str | None
    resource: str | None
    query: dict[str, str]


class Api:
    """The API server the sync talks to, and what the benchmark asks of it."""

    name = ""

    def kubeconfig(self, path: Path) -> Path: ...
    def create(self, resource: str, obj: dict[str, Any]) -> None: ...
    def has(self, namespace: str, name: str) -> bool: ...
    def objects(self, resource: str) -> list[dict[str, Any]]: ...
    def reset(self) -> None: ...
    def requests(self) -> list[Rec]: ...
    def writes(self) -> int:
        """Writes since the last reset, by anyone (the fake's resourceVersion moves; on the
        real server, the product's writes in the audit log)."""
        ...

    def stop(self) -> None: ...


class FakeApi(Api):
    name = "fake"

    def __init__(self, history: int) -> None:
        self.fake = FakeApiServer(history_limit=history).start()
        self.rv0 = 0

    def kubeconfig(self, path: Path) -> Path:
        return self.fake.kubeconfig(path)

    def create(self, resource: str, obj: dict[str, Any]) -> None:
        self.fake.create(resource, obj)

    def has(self, namespace: str, name: str) -> bool:
        return self.fake.get("secrets", name, namespace) is not None

    def objects(self, resource: str) -> list[dict[str, Any]]:
        return self.fake.objects(resource)

    def reset(self) -> None:
        self.fake.reset_counts()
        self.rv0 = self.fake.resource_version

    def requests(self) -> list[Rec]:
        return [Rec(r.verb, r.resource, r.query) for r in self.fake.requests]

    def writes(self) -> int:
        return self.fake.resource_version - self.rv0

    def stop(self) -> None:
        self.fake.stop()


class RealApi(Api):
    name = "real"

    def __init__(self, base: Path) -> None:
        self.plane = ControlPlane(base / "kube").start()
        self.kube = RealCluster(self.plane)
        self.mark, self.seen = self.plane.audit_end(), []  # type: ignore[var-annotated]

    def kubeconfig(self, path: Path) -> Path:
        return self.kube.kubeconfig(path)

    def create(self, resource: str, obj: dict[str, Any]) -> None:
        self.kube.create(resource, obj)

    def has(self, namespace: str, name: str) -> bool:
        return self.kube.get("secrets", name, namespace) is not None

    def objects(self, resource: str) -> list[dict[str, Any]]:
        return self.kube.objects(resource)

    def reset(self) -> None:
        self.mark, self.seen = self.plane.audit_end(), []

    def requests(self) -> list[Rec]:
        events, self.mark = self.plane.audit("pullkeeper", self.mark)
        for e in events:
            ref = e.get("objectRef") or {}
            query = dict(parse_qsl(urlsplit(e["requestURI"]).query))
            self.seen.append(Rec(e["verb"], ref.get("resource"), query))
        return list(self.seen)

    def writes(self) -> int:
        return sum(1 for r in self.requests() if r.verb in WRITE_VERBS)

    def stop(self) -> None:
        self.plane.stop()


@dataclass
class Requests:
    by_verb: dict[str, int]
    list_ops: dict[str, int]  # by resource: list requests that are not a continuation page
    writes: int

    @classmethod
    def of(cls, recs: list[Rec]) -> Requests:
        by_verb = {v: sum(1 for r in recs if r.verb == v) for v in VERBS}
        ops: dict[str, int] = {}
        for r in recs:
            if r.verb == "list" and not r.query.get("continue"):
                ops[r.resource or "?"] = ops.get(r.resource or "?", 0) + 1
        writes = sum(1 for r in recs if r.verb in WRITE_VERBS)
        return cls(by_verb, ops, writes)

    @property
    def lists(self) -> int:
        return sum(self.list_ops.values())

    def list_ops_text(self) -> str:
        return " ".join(f"{k} {v}" for k, v in sorted(self.list_ops.items()))


@dataclass
class World:
    args: argparse.Namespace
    namespaces: int
    base: Path
    api: Api
    server: Server
    manager: sync.SyncManager | None = None
    cluster_id: str = ""
    names: dict[str, list[str]] = field(default_factory=dict)  # project -> credential names
    cluster_wide: list[str] = field(default_factory=list)

    @property
    def loop(self) -> sync.ClusterSync:
        assert self.manager is not None
        return self.manager.loops[self.cluster_id]

    def project_of(self, i: int) -> str:
        return f"team-{i % self.args.projects:03d}"

    def expected_for(self, namespace: str, project: str | None) -> list[str]:
        out = list(self.names[project]) if project else []
        if namespace not in delivery.DEFAULT_EXCLUDED:
            out += self.cluster_wide
        return out

    def has_all(self, namespace: str, names: list[str]) -> bool:
        return all(self.api.has(namespace, n) for n in names)

    def managed(self) -> set[tuple[str, str]]:
        return {
            (s["metadata"]["namespace"], s["metadata"]["name"])
            for s in self.api.objects("secrets")
            if (s["metadata"].get("labels") or {}).get(delivery.MANAGED_BY) == delivery.MANAGER
        }

    def start_sync(self, **settings: Any) -> None:
        if settings:
            self.server.settings = self.server.settings.model_copy(update=settings)
        self.manager = sync.start(self.server)

    def stop_sync(self) -> None:
        if self.manager is not None:
            self.manager.stop()
            self.server.on_change.remove(self.manager.changed)
            self.manager = None


def build(
    args: argparse.Namespace, namespaces: int, base: Path
) -> tuple[World, list[tuple[str, str]]]:
    """The namespaces in the API server, then the cluster, projects and credentials in a
    store."""
    api: Api = RealApi(base) if args.which == "real" else FakeApi(args.history)
    server = Server.open(
        Settings(data=base / "data", sync_poll_seconds=args.poll, sync_resync_seconds=600)
    )
    w = World(args, namespaces, base, api, server)
    expected: list[tuple[str, str]] = []
    for i in range(namespaces):
        project = w.project_of(i)
        name = f"{project}-ns-{i // args.projects:04d}"
        labels = {delivery.PROJECT_LABEL: project}
        api.create("namespaces", {"metadata": {"name": name, "labels": labels}})
    kubeconfig = api.kubeconfig(base / "bench.kubeconfig")
    with server.transaction() as s:
        cluster = clusters.create_cluster(s, SYSTEM, CLUSTER, kubeconfig=str(kubeconfig))
        w.cluster_id = cluster.id
        for p in range(args.projects):
            name = f"team-{p:03d}"
            project = clusters.create_project(s, SYSTEM, cluster, name)
            w.names[name] = []
            for k in range(args.creds_per_project):
                cred = f"{name}-registry-{k}"
                scope = credentials.Scope("project", cluster, project)
                made(s, w, cred, scope, p * 100 + k)
                w.names[name].append(cred)
        for k in range(args.cluster_creds):
            cred = f"mirror-{k}"
            made(s, w, cred, credentials.Scope("cluster", cluster), 10**6 + k)
            w.cluster_wide.append(cred)
    for ns in api.objects("namespaces"):
        name = ns["metadata"]["name"]
        project = (ns["metadata"].get("labels") or {}).get(delivery.PROJECT_LABEL)
        expected += [(name, n) for n in w.expected_for(name, project)]
    return w, expected


def made(s: Any, w: World, name: str, scope: Any, i: int) -> None:
    spec = credentials.CredentialSpec(
        name=name,
        scope=scope,
        provider="custom",
        server=f"registry-{i % 7}.corp.example.com",
        username=f"robot-{i}",
        password=f"pw-{i}-{i * 7919 % 100003:05d}",
    )
    credentials.create(s, SYSTEM, w.server.vault, spec)


@dataclass
class Converged:
    namespaces: int
    secrets: int
    seconds: float
    requests: Requests
    created: int
    cpu: float
    loop_cpu: float
    passes: int


def converge(w: World, expected: list[tuple[str, str]]) -> Converged:
    want = set(expected)
    w.api.reset()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    w.start_sync()

    def done() -> bool:
        # Cheap first (the writes so far), then the real check.
        return w.api.writes() >= len(want) and want <= w.managed()

    every = 0.02 if w.api.name == "fake" else 0.1
    t1 = wait_for(done, 600, every, f"{len(want)} Secrets")
    seconds = t1 - t0
    cpu = cpu_seconds() - cpu0
    loop_cpu = thread_cpu(f"sync-{w.cluster_id}")
    time.sleep(0.5)  # requests still in flight are counted too
    recs = w.api.requests()
    requests = Requests.of(recs)
    created = sum(1 for r in recs if r.verb == "create" and r.resource == "secrets")
    return Converged(
        w.namespaces, len(want), seconds, requests, created, cpu, loop_cpu, w.loop.passes
    )


@dataclass
class NewNamespaces:
    latencies: list[float]
    secrets_each: int
    writes: int
    created: int
    cpu: float
    passes: int


def new_namespaces(w: World) -> NewNamespaces:
    w.api.reset()
    cpu0 = cpu_seconds()
    passes0 = w.loop.passes
    latencies = []
    for i in range(w.args.new):
        project = w.project_of(i)
        name = f"{project}-new-{i:04d}"
        names = w.expected_for(name, project)
        body = {"metadata": {"name": name, "labels": {delivery.PROJECT_LABEL: project}}}
        t0 = time.perf_counter()
        w.api.create("namespaces", body)
        t1 = wait_for(partial(w.has_all, name, names), 60, 0.005, f"the Secrets of {name}")
        latencies.append(t1 - t0)
    cpu = cpu_seconds() - cpu0
    time.sleep(0.5)
    recs = [r for r in w.api.requests() if r.resource == "secrets"]
    return NewNamespaces(
        latencies,
        w.args.creds_per_project + w.args.cluster_creds,
        sum(1 for r in recs if r.verb in WRITE_VERBS),
        sum(1 for r in recs if r.verb == "create"),
        cpu,
        w.loop.passes - passes0,
    )


@dataclass
class Resync:
    seconds: float
    full_passes: int  # list operations on namespaces: the restart's pass and each resync
    requests: Requests
    rv_moved: int
    cpu: float
    loop_cpu: float


def resync(w: World) -> Resync:
    w.stop_sync()
    w.api.reset()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    w.start_sync(sync_resync_seconds=w.args.resync)
    passes = 1 + w.args.resyncs

    def starts() -> list[int]:
        """Where each full pass begins in the request log: its list of the namespaces."""
        return [
            i
            for i, r in enumerate(w.api.requests())
            if r.verb == "list" and r.resource == "namespaces" and not r.query.get("continue")
        ]

    t1 = wait_for(lambda: len(starts()) > passes, 120, 0.05, f"{passes} full passes")
    cpu = cpu_seconds() - cpu0
    loop_cpu = thread_cpu(f"sync-{w.cluster_id}")
    moved = w.api.writes()
    # The passes counted end where the next one begins.
    end = starts()[passes]
    requests = Requests.of(w.api.requests()[:end])
    return Resync(t1 - t0, passes, requests, moved, cpu, loop_cpu)


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


def run(args: argparse.Namespace, namespaces: int, full: bool) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="pk-sync-bench-"))
    w, expected = build(args, namespaces, base)
    out: dict[str, Any] = {}
    try:
        print(f"[{namespaces} namespaces] converging to {len(expected)} Secrets ...", flush=True)
        out["converged"] = converge(w, expected)
        print(
            f"[{namespaces} namespaces] converged in {out['converged'].seconds:.1f} s", flush=True
        )
        if full:
            print(f"[{namespaces} namespaces] {args.new} new namespaces, one at a time ...")
            out["new"] = new_namespaces(w)
            print(f"[{namespaces} namespaces] restart with resync every {args.resync:g} s ...")
            out["resync"] = resync(w)
            counts = w.manager.statuses.counts() if w.manager else {}
            out["statuses"] = counts
    finally:
        w.stop_sync()
        w.server.close()
        w.api.stop()
        shutil.rmtree(base, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=("both", "real", "fake"), default="both")
    parser.add_argument("--namespaces", type=int, default=2000)
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--creds-per-project", type=int, default=5)
    parser.add_argument("--cluster-creds", type=int, default=2, help="cluster-scoped credentials")
    parser.add_argument(
        "--small", type=int, default=200, help="namespaces of the smaller run (0: none)"
    )
    parser.add_argument("--new", type=int, default=50, help="namespaces created after convergence")
    parser.add_argument("--resync", type=float, default=2.0, help="sync_resync_seconds of step 3")
    parser.add_argument("--resyncs", type=int, default=3, help="full resyncs to watch in step 3")
    parser.add_argument("--poll", type=float, default=2.0, help="sync_poll_seconds")
    parser.add_argument(
        "--history",
        type=int,
        default=100_000,
        help="changes the fake keeps for watches to resume from",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}"
    )
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(
        f"scenario: {args.namespaces} namespaces in {args.projects} projects, "
        f"{args.creds_per_project} project-scoped credentials per project "
        f"({args.projects * args.creds_per_project}), plus {args.cluster_creds} cluster-scoped "
        "(every namespace but kube-system, the fake's default namespace included)"
    )
    print(
        f"the fake API server runs in this process and keeps the last {args.history} changes "
        f"for watches; sync_poll_seconds={args.poll:g}"
    )

    for which in ("real", "fake") if args.api == "both" else (args.api,):
        args.which = which
        small = run(args, args.small, full=False) if args.small else None
        big = run(args, args.namespaces, full=True)
        report(args, small, big)


def report(args: argparse.Namespace, small: dict[str, Any] | None, big: dict[str, Any]) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    title = {"real": "REAL API server (kube-apiserver v1.34, etcd 3.6)", "fake": "FAKE API server"}
    print(f"=== {title[args.which]} ===")
    rows = []
    for out in [o for o in (small, big) if o]:
        c: Converged = out["converged"]
        r = c.requests
        rows.append(
            (
                str(c.namespaces),
                str(c.secrets),
                f"{c.seconds:.1f}",
                f"{c.secrets / c.seconds:.0f}",
                *(
                    str(r.by_verb[v])
                    for v in ("list", "watch", "get", "create", "update", "delete")
                ),
                str(r.lists),
                f"{r.writes / max(1, c.created):.3f}",
                str(c.passes),
                f"{c.cpu:.1f}",
                f"{c.loop_cpu:.1f}",
            )
        )
    table(
        "1. Converging from empty (sync started after the namespaces and credentials exist)",
        (
            "namespaces",
            "Secrets",
            "seconds",
            "Secrets/s",
            "list",
            "watch",
            "get",
            "create",
            "update",
            "delete",
            "list ops",
            "writes/created",
            "passes",
            "CPU s",
            "loop CPU s",
        ),
        rows,
    )
    print("(list: HTTP requests, pages of 500; list ops: lists, whatever their number of pages)")

    rs: Resync = big["resync"]
    table(
        f"2. No-op resync: restart with sync_resync_seconds={args.resync:g}, the first pass and "
        f"{args.resyncs} resyncs on the converged cluster "
        f"({big['converged'].namespaces} namespaces)",
        (
            "full passes",
            "seconds",
            "writes",
            "list",
            "list ops",
            "watch",
            "get",
            "rv moved",
            "CPU s",
            "loop CPU s",
        ),
        [
            (
                str(rs.full_passes),
                f"{rs.seconds:.1f}",
                str(rs.requests.writes),
                str(rs.requests.by_verb["list"]),
                rs.requests.list_ops_text(),
                str(rs.requests.by_verb["watch"]),
                str(rs.requests.by_verb["get"]),
                str(rs.rv_moved),
                f"{rs.cpu:.1f}",
                f"{rs.loop_cpu:.1f}",
            )
        ],
    )

    nn: NewNamespaces = big["new"]
    lat = [x * 1000 for x in nn.latencies]
    table(
        f"3. Namespace created (POST) until all {nn.secrets_each} of its Secrets exist, "
        f"{len(lat)} namespaces one at a time",
        (
            "median ms",
            "p95 ms",
            "max ms",
            "min ms",
            "Secret writes",
            "per namespace",
            "passes",
            "CPU s",
        ),
        [
            (
                f"{statistics.median(lat):.0f}",
                f"{pct(lat, 0.95):.0f}",
                f"{max(lat):.0f}",
                f"{min(lat):.0f}",
                str(nn.writes),
                f"{nn.writes / max(1, len(lat)):.2f}",
                str(nn.passes),
                f"{nn.cpu:.1f}",
            )
        ],
    )
    print()
    print(
        f"4. peak RSS {peak_mb:.0f} MB so far (this process: store and sync, and the fake when "
        f"it is the fake); statuses at the end {big.get('statuses')}"
    )

    c = big["converged"]
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    checks = [
        (
            "writes per Secret created (converging)",
            "= 1",
            f"{c.requests.writes / max(1, c.created):.3f}",
            verdict(c.requests.writes == c.created == c.secrets),
        ),
    ]
    if small:
        s = small["converged"]
        checks.append(
            (
                f"list ops, {s.namespaces} vs {c.namespaces} namespaces",
                "equal",
                f"{s.requests.lists} vs {c.requests.lists}",
                verdict(s.requests.list_ops == c.requests.list_ops),
            )
        )
    checks += [
        (
            "writes during no-op resyncs",
            "0",
            str(rs.requests.writes),
            verdict(rs.requests.writes == 0),
        ),
        (
            "new namespace to its Secrets, p95",
            "<= 1000 ms",
            f"{pct(lat, 0.95):.0f} ms",
            verdict(pct(lat, 0.95) <= 1000),
        ),
        (
            "new namespace to its Secrets, max",
            "<= 1000 ms",
            f"{max(lat):.0f} ms",
            verdict(max(lat) <= 1000),
        ),
    ]
    table("Targets", ("target", "wanted", "measured", ""), checks)


if __name__ == "__main__":
    main()
