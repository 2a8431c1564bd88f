"""`pullkeeper serve` under load, on SQLite and on PostgreSQL, plus start-up time and idle RSS.

For each store the script seeds, through the service layer in this process,
4 clusters, 200 projects (50 per cluster), 2,000 namespaces (10 per project)
and 10,000 credentials: 70% namespace-scoped, 28% project-scoped and 2%
cluster-scoped, over 9 providers (custom, harbor, dockerhub, quay, ghcr,
gitlab, ecr, gcr, acr). Then it starts the real `pullkeeper serve` (the
executable next to this interpreter) on that store and drives it over
loopback from threads, each with its own keep-alive httpx.Client:

  floor           GET  /healthz (no auth, no store) and GET /api/v1/me (auth only)
  list            GET  /api/v1/credentials?limit=50
  list project    GET  /api/v1/credentials?limit=50&project=<random project>
  effective       GET  /api/v1/namespaces/<random ns>/effective-credentials?cluster=<its cluster>
  deep, offset    GET  /api/v1/credentials?limit=50&offset=<half the credentials>
  deep, cursor    GET  /api/v1/credentials?limit=50&cursor=<the cursor at the same row>
  create          POST /api/v1/credentials (namespace scope, random namespace)

Each is run closed-loop (every client sends its next request as soon as the
previous answer is read) with 32 clients for --duration seconds after a 1 s
warm-up, and with 1 client for a third of that, which shows the service time
without queueing. Latency is the client's wall clock around one request; the
server's CPU per request is its utime+stime over the window divided by the
requests (PostgreSQL's own processes are not in it). Right before each read,
the floor GET /api/v1/me runs again at 1 client, and a table sets each read's
CPU per request against it (a ratio that holds while the load of the shared
machine drifts), with the closed-loop reads/s, against the targets (<= 1.5 ms
of CPU per read, >= 600 reads/s per process).

Then start-up time (process start until /readyz answers 200, polled every
5 ms) and idle RSS (VmRSS of the server process after 4 requests and 0.5 s of
rest), the median of 5 runs, on an empty store (a first start: keys,
migrations, the admin) and on the seeded one.

PostgreSQL is a real PostgreSQL 15 started by tests/pg.py (fsync=off: writes
are flattered). Without it the PostgreSQL rows are skipped with the reason.

Run: .venv/bin/python benchmarks/server_load.py [--duration 8] [--skip-pg]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import pg  # noqa: E402

from pullkeeper.services import clusters as cluster_svc  # noqa: E402
from pullkeeper.services import credentials as cred_svc  # noqa: E402
from pullkeeper.services.actor import SYSTEM  # noqa: E402
from pullkeeper.services.server import Server  # noqa: E402
from pullkeeper.settings import Settings  # noqa: E402

TOKEN = "pk_bench0123456789abcdef0123456789abcdef"  # noqa: S105 - a throwaway benchmark token
CLUSTERS = 4
PROJECTS = 200
NAMESPACES_PER_PROJECT = 10
CREDENTIALS = 10_000
SEED = 20261122
RUNS = 5
TICKS = os.sysconf("SC_CLK_TCK")
READS = ("list", "effective")  # the management reads, by scenario label
# Per read and process: server CPU per request (1 client), closed-loop reads/s (32 clients).
CPU_TARGET_MS, RATE_TARGET = 1.5, 600

GCR_KEY = (
    '{"type":"service_account","client_email":"bench@p.iam.gserviceaccount.com","private_key":"k"}'
)


def provider_fields(rng: random.Random, i: int) -> dict[str, Any]:
    """(provider, server, username, password) for credential i, mixed like a real fleet."""
    kind = rng.choices(
        ["custom", "harbor", "dockerhub", "quay", "ghcr", "gitlab", "ecr", "gcr", "acr"],
        weights=[25, 15, 15, 10, 10, 5, 10, 5, 5],
    )[0]
    password = f"secret-{i}-{rng.getrandbits(48):012x}"
    username = f"robot-{i % 97}"
    server: str | None = None
    if kind == "custom":
        server = f"registry-{rng.randrange(40)}.corp.example.com"
    elif kind == "harbor":
        server = f"harbor-{rng.randrange(10)}.example.com:8443"
    elif kind == "gitlab":
        server = "registry.gitlab.com"
    elif kind == "ecr":
        server = f"{rng.randrange(10**12):012d}.dkr.ecr.eu-west-1.amazonaws.com"
        username = "AWS"
    elif kind == "gcr":
        server, username, password = "gcr.io", "_json_key", GCR_KEY
    elif kind == "acr":
        server = f"team{rng.randrange(50):03d}.azurecr.io"
    return {"provider": kind, "server": server, "username": username, "password": password}


@dataclass
class Seeded:
    credentials: int
    clusters: list[str]
    projects: list[str]  # project ids
    namespaces: list[tuple[str, str]]  # (cluster name, namespace name)
    seconds: float


def seed(data: Path, database_url: str, credentials: int) -> Seeded:
    """The fleet, written through the service layer in batches of 500 per transaction."""
    t0 = time.perf_counter()
    settings = Settings(data=data, database_url=database_url, admin_token=SecretStr(TOKEN))
    server = Server.open(settings)  # migrated, with its encryption key made and recorded
    server.first_start()
    rng = random.Random(SEED)
    cluster_names: list[str] = []
    projects: list[tuple[Any, Any]] = []  # (cluster, project) ORM objects
    namespaces: list[tuple[Any, Any, str]] = []  # (cluster, project, name)
    with server.transaction() as s:
        for c in range(CLUSTERS):
            cluster = cluster_svc.create_cluster(s, SYSTEM, f"cluster-{c}")
            cluster_names.append(cluster.name)
            for p in range(PROJECTS // CLUSTERS):
                project = cluster_svc.create_project(s, SYSTEM, cluster, f"team-{c}-{p}")
                projects.append((cluster, project))
                for n in range(NAMESPACES_PER_PROJECT):
                    name = f"ns-{c}-{p}-{n}"
                    cluster_svc.put_namespace(s, SYSTEM, cluster, name, project)
                    namespaces.append((cluster, project, name))
    done = 0
    while done < credentials:
        with server.transaction() as s:
            for i in range(done, min(done + 500, credentials)):
                roll = rng.random()
                if roll < 0.70:
                    cluster, project, ns = rng.choice(namespaces)
                    scope = cred_svc.Scope("namespace", cluster, project, ns)
                elif roll < 0.98:
                    cluster, project = rng.choice(projects)
                    scope = cred_svc.Scope("project", cluster, project)
                else:
                    cluster = rng.choice(projects)[0]
                    scope = cred_svc.Scope("cluster", cluster)
                fields = provider_fields(rng, i)
                spec = cred_svc.CredentialSpec(
                    name=f"{fields['provider']}-{i}",
                    scope=scope,
                    description=f"seeded credential {i}",
                    active=rng.random() < 0.9,
                    **fields,
                )
                cred_svc.create(s, SYSTEM, server.vault, spec)
        done = min(done + 500, credentials)
    server.close()
    return Seeded(
        credentials,
        cluster_names,
        [p.id for _, p in projects],
        [(c.name, n) for c, _, n in namespaces],
        time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- the process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def executable() -> str:
    exe = Path(sys.executable).with_name("pullkeeper")
    if not exe.exists():
        sys.exit(f"FAIL: no pullkeeper next to {sys.executable}; install the project in this venv")
    return str(exe)


class Serve:
    def __init__(self, data: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [executable(), "serve", "--data", str(data), "--port", str(self.port)]
        if database_url:
            args += ["--database-url", database_url]
        env = dict(os.environ, PULLKEEPER_ADMIN_TOKEN=TOKEN, PULLKEEPER_LOG_LEVEL="warning")
        self.log_path = data.parent / f"{data.name}.log"
        self.t0 = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.ready_after = self._wait_ready()

    def _wait_ready(self) -> float:
        with httpx.Client(timeout=1) as c:
            while time.perf_counter() - self.t0 < 60:
                if self.proc.poll() is not None:
                    log = self.log_path.read_text(errors="replace")
                    sys.exit(f"FAIL: pullkeeper serve exited at start:\n{log}")
                try:
                    if c.get(self.url + "/readyz").status_code == 200:
                        return time.perf_counter() - self.t0
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        self.stop()
        sys.exit("FAIL: pullkeeper serve was not ready within 60 s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- load

Request = Callable[[httpx.Client, random.Random, int], httpx.Response]


@dataclass
class Result:
    label: str
    clients: int
    latencies: list[float]
    seconds: float
    errors: int
    server_cpu: float
    rate: float | None = None

    @property
    def n(self) -> int:
        return len(self.latencies)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def throughput(self) -> float:
        return self.n / self.seconds


def load(
    serve: Serve,
    label: str,
    request: Request,
    clients: int,
    duration: float,
    rate: float | None = None,
    warmup: float = 1.0,
) -> Result:
    """Closed-loop, or paced at `rate` requests/s over all clients.

    Paced clients send on a fixed schedule and latency counts from the scheduled
    time, so a server that falls behind is charged for the wait it causes.
    """
    start = threading.Barrier(clients + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    first_error: list[str] = []
    window: dict[str, float] = {}

    def client(n: int) -> None:
        rng = random.Random(n * 7919 + zlib.crc32(label.encode()))
        mine: list[float] = []
        bad = 0
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=serve.url, headers=headers, timeout=60) as c:
            c.get("/readyz")  # open the keep-alive connection before the clock starts
            start.wait()
            i = 0
            begin = window["start"] - warmup
            while True:
                t0 = time.perf_counter()
                if rate:
                    due = begin + (i * clients + n) / rate
                    if due > t0:
                        time.sleep(due - t0)
                    t0 = due
                if t0 >= window["end"]:
                    break
                r = request(c, rng, n * 1_000_000 + i)
                t1 = time.perf_counter()
                i += 1
                if t0 < window["start"]:
                    continue
                if r.is_success:
                    mine.append(t1 - t0)
                else:
                    bad += 1
                    if not first_error:
                        first_error.append(f"{r.status_code} {r.text[:300]}")
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    window["start"], window["end"] = now + warmup, now + warmup + duration
    start.wait()
    time.sleep(max(0.0, window["start"] - time.perf_counter()))
    cpu0 = serve.cpu_seconds()
    time.sleep(max(0.0, window["end"] - time.perf_counter()))
    cpu1 = serve.cpu_seconds()
    for t in threads:
        t.join()
    if first_error:
        print(f"  ! {label}: {errors[0]} errors, first: {first_error[0]}")
    n = max(1, len(latencies))
    return Result(label, clients, latencies, duration, errors[0], (cpu1 - cpu0) / n, rate)


def scenarios(seeded: Seeded) -> list[tuple[str, Request]]:
    def list_all(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        return c.get("/api/v1/credentials", params={"limit": 50})

    def list_project(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        return c.get(
            "/api/v1/credentials", params={"limit": 50, "project": rng.choice(seeded.projects)}
        )

    def effective(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        cluster, ns = rng.choice(seeded.namespaces)
        path = f"/api/v1/namespaces/{ns}/effective-credentials"
        return c.get(path, params={"cluster": cluster})

    def create(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        cluster, ns = rng.choice(seeded.namespaces)
        body = {
            "name": f"bench-{uuid.uuid4().hex}",
            "cluster": cluster,
            "scope": "namespace",
            "namespace": ns,
            **provider_fields(rng, i),
        }
        return c.post("/api/v1/credentials", json=body)

    deep = seeded.credentials // 2
    cursor: dict[str, str] = {}

    def deep_offset(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        return c.get("/api/v1/credentials", params={"limit": 50, "offset": deep})

    def deep_cursor(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        if "next" not in cursor:  # the cursor after row `deep`, as a client paging there holds
            place = c.get("/api/v1/credentials", params={"limit": 1, "offset": deep - 1})
            cursor["next"] = place.json()["next"]
        return c.get("/api/v1/credentials", params={"limit": 50, "cursor": cursor["next"]})

    def healthz(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        return c.get("/healthz")

    def me(c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        return c.get("/api/v1/me")

    return [
        ("floor: GET /healthz", healthz),
        ("floor: GET /api/v1/me", me),
        ("list (limit=50)", list_all),
        ("list, project filter", list_project),
        ("effective-credentials", effective),
        (f"list, offset {deep}", deep_offset),
        (f"list, cursor at {deep}", deep_cursor),
        ("create (POST)", create),
    ]


def probe(serve: Serve) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    page: dict[str, Any] = httpx.get(
        serve.url + "/api/v1/credentials", params={"limit": 1}, headers=headers, timeout=30
    ).json()
    return page


# --------------------------------------------------------------------------- start-up, RSS


def startup_and_rss(data: Path, database_url: str, seeded: Seeded | None) -> tuple[float, float]:
    serve = Serve(data, database_url)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=serve.url + "/api/v1", headers=headers, timeout=30) as c:
            c.get("/me").raise_for_status()
            c.get("/credentials", params={"limit": 50}).raise_for_status()
            if seeded:
                cluster, ns = seeded.namespaces[0]
                path = f"/namespaces/{ns}/effective-credentials"
                c.get(path, params={"cluster": cluster}).raise_for_status()
            else:
                c.get("/clusters").raise_for_status()
            httpx.get(serve.url + "/metrics").raise_for_status()
        time.sleep(0.5)
        return serve.ready_after, serve.rss_mb()
    finally:
        serve.stop()


# --------------------------------------------------------------------------- output


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


@contextmanager
def store(kind: str, base: Path) -> Iterator[tuple[str, Callable[[str], str]]]:
    """(database URL of the seeded store, a factory of fresh empty databases)."""
    if kind == "sqlite":
        yield "", lambda name: ""
        return
    with pg.postgres() as url:
        port = url.rsplit(":", maxsplit=1)[1].split("/", maxsplit=1)[0]

        def fresh(name: str) -> str:
            psql = [str(pg.BIN / "psql"), "-h", "127.0.0.1", "-p", port, "-U", "postgres"]
            subprocess.run(
                [*psql, "-q", "-c", f"CREATE DATABASE {name}"],
                check=True,
                capture_output=True,
            )
            return url.rsplit("/", maxsplit=1)[0] + "/" + name

        yield url, fresh


def bench_store(kind: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind}
    with store(kind, base) as (url, fresh):
        data = base / f"{kind}-seeded"
        print(f"\n[{kind}] seeding {args.credentials} credentials ...", flush=True)
        seeded = seed(data, url, args.credentials)
        out["seed_seconds"] = seeded.seconds
        print(f"[{kind}] seeded in {seeded.seconds:.1f} s", flush=True)

        serve = Serve(data, url)
        results: list[Result] = []
        floors: dict[str, Result] = {}
        try:
            plan = scenarios(seeded)
            if "next" not in probe(serve):
                print(f"[{kind}] this server answers no cursors: no keyset runs", flush=True)
                plan = [(label, r) for label, r in plan if "cursor" not in label]
            me = dict(plan)["floor: GET /api/v1/me"]
            for label, request in plan:
                if label.startswith(READS):
                    # The floor again right before each read: drift in the machine's load
                    # (shared CPUs) moves both, and their ratio holds.
                    print(f"[{kind}] floor before {label} ...", flush=True)
                    floors[label] = load(serve, "floor: GET /api/v1/me", me, 1, args.duration / 3)
                for clients, duration in ((args.clients, args.duration), (1, args.duration / 3)):
                    print(f"[{kind}] {label}, {clients} client(s) ...", flush=True)
                    results.append(load(serve, label, request, clients, duration))
                if not label.startswith(READS) or "offset" in label or "cursor" in label:
                    continue
                for rate in args.rates:
                    print(f"[{kind}] {label}, {args.clients} clients at {rate:g}/s ...", flush=True)
                    results.append(
                        load(serve, label, request, args.clients, args.duration / 2, rate)
                    )
            out["rss_after_load"] = serve.rss_mb()
        finally:
            serve.stop()
        out["results"], out["floors"] = results, floors

        ready: dict[str, list[float]] = {"empty": [], "seeded": []}
        rss: dict[str, list[float]] = {"empty": [], "seeded": []}
        for run in range(RUNS):
            empty_dir = base / f"{kind}-empty-{run}"
            t, m = startup_and_rss(empty_dir, fresh(f"pk_empty_{run}"), None)
            ready["empty"].append(t)
            rss["empty"].append(m)
            t, m = startup_and_rss(data, url, seeded)
            ready["seeded"].append(t)
            rss["seeded"].append(m)
        out["ready"], out["rss"] = ready, rss
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per 32-client run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--credentials", type=int, default=CREDENTIALS)
    parser.add_argument(
        "--rates",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[50.0, 100.0, 200.0],
        help="paced request rates (per second, over all clients) for the read operations",
    )
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}"
    )
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"server: {executable()} serve (uvicorn, 1 process); clients: threads in this process")
    kinds = ["sqlite"]
    if args.skip_pg:
        print("PostgreSQL: skipped (--skip-pg)")
    elif reason := pg.available():
        print(f"PostgreSQL: SKIPPED, {reason}")
    else:
        kinds.append("postgresql")

    base = Path(tempfile.mkdtemp(prefix="pk-bench-"))
    client_cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        outs = [bench_store(kind, args, base) for kind in kinds]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    client_cpu1 = resource.getrusage(resource.RUSAGE_SELF)

    rows = []
    for out in outs:
        for r in out["results"]:
            rows.append(
                (
                    f"{out['kind']}: {r.label}",
                    str(r.clients),
                    f"{r.rate:g}/s" if r.rate else "closed",
                    str(r.n),
                    f"{r.throughput:.0f}",
                    f"{r.pct(0.50):.1f}",
                    f"{r.pct(0.99):.1f}",
                    f"{max(r.latencies) * 1000:.1f}" if r.latencies else "-",
                    f"{r.server_cpu * 1000:.2f}",
                    str(r.errors),
                )
            )
    table(
        f"Load over loopback: closed loop ({args.duration:g} s at {args.clients} clients, "
        f"{args.duration / 3:.2f} s at 1 client) and paced ({args.duration / 2:g} s at a fixed "
        "rate), after 1 s warm-up",
        (
            "store: operation",
            "clients",
            "load",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "server CPU ms/req",
            "errors",
        ),
        rows,
    )

    rows = []
    for out in outs:
        for which in ("empty", "seeded"):
            rows.append(
                (
                    f"{out['kind']}, {which} store",
                    f"{statistics.median(out['ready'][which]):.3f}",
                    f"{min(out['ready'][which]):.3f}",
                    f"{max(out['ready'][which]):.3f}",
                    f"{statistics.median(out['rss'][which]):.1f}",
                    f"{max(out['rss'][which]):.1f}",
                )
            )
    table(
        f"Start-up to ready (s) and idle RSS (MB) after 4 requests, {RUNS} runs each "
        "(empty = first start: keys, migrations, admin)",
        ("store", "ready median", "min", "max", "RSS median", "RSS max"),
        rows,
    )
    print()
    for out in outs:
        print(
            f"{out['kind']}: seeding took {out['seed_seconds']:.1f} s; RSS right after the load "
            f"runs {out['rss_after_load']:.1f} MB"
        )
    used = (client_cpu1.ru_utime - client_cpu0.ru_utime) + (
        client_cpu1.ru_stime - client_cpu0.ru_stime
    )
    print(f"this process (seeding + load clients) used {used:.1f} s of CPU")

    rows = []
    for out in outs:
        by = {(r.label, r.clients): r for r in out["results"] if r.rate is None}
        for label, floor in out["floors"].items():
            one, many = by[(label, 1)], by[(label, args.clients)]
            rows.append(
                (
                    f"{out['kind']}: {label}",
                    f"{one.server_cpu * 1000:.2f}",
                    f"{floor.server_cpu * 1000:.2f}",
                    f"{one.server_cpu / floor.server_cpu:.1f}" if floor.server_cpu else "-",
                    f"{many.throughput:.0f}",
                    "met" if one.server_cpu * 1000 <= CPU_TARGET_MS else "MISSED",
                    "met" if many.throughput >= RATE_TARGET else "MISSED",
                )
            )
    table(
        "Reads against the floor (GET /api/v1/me, 1 client, measured right before each read): "
        f"server CPU per request at 1 client, closed-loop reads/s at {args.clients} clients; "
        f"targets <= {CPU_TARGET_MS} ms and >= {RATE_TARGET}/s",
        ("store: read", "CPU ms", "floor CPU ms", "ratio", "reads/s", "CPU", "reads/s target"),
        rows,
    )

    reads = [
        r
        for out in outs
        if out["kind"] == "sqlite"
        for r in out["results"]
        if r.clients == args.clients and r.label.startswith(READS)
    ]
    print()
    print(
        "Targets: p99 <= 20 ms for reads on SQLite at 32 clients; idle RSS <= 150 MB; ready <= 2 s"
    )
    for r in reads:
        verdict = "met" if r.pct(0.99) <= 20 else "MISSED"
        load_ = f"at {r.rate:g}/s" if r.rate else "closed loop"
        print(f"  sqlite {r.label:24} {load_:12} p99 {r.pct(0.99):7.1f} ms  {verdict}")
    for out in outs:
        for which in ("empty", "seeded"):
            m = statistics.median(out["rss"][which])
            t = statistics.median(out["ready"][which])
            print(
                f"  {out['kind']:10} {which:6} RSS {m:6.1f} MB {'met' if m <= 150 else 'MISSED'}"
                f";  ready {t:.3f} s {'met' if t <= 2 else 'MISSED'}"
            )


if __name__ == "__main__":
    main()
