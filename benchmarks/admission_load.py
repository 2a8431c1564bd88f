"""`/admission/mutate` of a real `pullkeeper serve --webhook-port` under load, over TLS.

The store (SQLite) is seeded through the service layer: one cluster, 100
projects of 10 namespaces (1,000 namespaces), 20 project-scoped credentials
per project (so 20 credentials apply in every namespace, over 20 registries)
and a policy per project (default registry, allowlist of 21 entries,
always-pull). The review is a CREATE of a 3-container pod (one unqualified
image, rewritten; two from credentialed registries), in a namespace chosen
round-robin; every answer must carry a patch, or the run counts an error.

Load over loopback (the server runs in its own process on the same two
cores) from wrk (Debian's `wrk`, keep-alive HTTPS, the reviews fed by a Lua
script), or, without wrk, from asyncio with keep-alive httpx connections
verifying the webhook's generated CA (a Python client costs more CPU than the
server it measures, so its figures are lower):

- paced: about a fixed total rate for --duration seconds. With wrk, each of
  the --connections connections waits connections/rate seconds between
  requests (its Lua `delay`), and latency is wrk's, from each send; with
  asyncio, latency is counted from each request's scheduled send time, so a
  server that falls behind is charged for the queue. The highest rate whose
  p99 is <= 5 ms is reported;
- closed: --connections connections back to back, the throughput ceiling.

The server's CPU per request (its utime + stime over the run, from /proc)
is shown beside each run.

Run: .venv/bin/python benchmarks/admission_load.py [--duration 10] [--rates 250,500,750,1000]
     (apt-get install wrk for the wrk load generator)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pullkeeper.services import clusters, credentials, policies  # noqa: E402
from pullkeeper.services.actor import SYSTEM  # noqa: E402
from pullkeeper.services.server import Server  # noqa: E402
from pullkeeper.settings import Settings  # noqa: E402

PROJECTS, PER_PROJECT, CREDS = 100, 10, 20
TARGET_MS, TARGET_RATE = 5.0, 500
DEFAULT_REGISTRY = "registry-0.example.com/hub"


def seed(
    data: Path, projects: int = PROJECTS, per_project: int = PER_PROJECT, kubeconfig: str = ""
) -> list[str]:
    """The store the webhook answers from; the names of its namespaces."""
    server = Server.open(Settings(data=data, sync=False))
    names = []
    with server.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "bench", kubeconfig=kubeconfig)
        for p in range(projects):
            project = clusters.create_project(session, SYSTEM, c, f"team-{p}")
            for n in range(per_project):
                name = f"team-{p}-ns-{n}"
                clusters.put_namespace(session, SYSTEM, c, name, project)
                names.append(name)
            scope = credentials.resolve_scope(session, SYSTEM, "project", c, project, None)
            for i in range(CREDS):
                spec = credentials.CredentialSpec(
                    name=f"pull-{i}",
                    scope=scope,
                    provider="custom",
                    server=f"registry-{i}.example.com",
                    username="robot",
                    password=f"bench-pw-{p}-{i}",
                )
                credentials.create(session, SYSTEM, server.vault, spec)
            allow = ["docker.io", *(f"registry-{i}.example.com" for i in range(CREDS))]
            policies.put(
                session,
                SYSTEM,
                c,
                project,
                {"default_registry": DEFAULT_REGISTRY, "allowlist": allow,
                 "always_pull": True},
            )  # fmt: skip
    server.close()
    return names


def review(namespace: str) -> bytes:
    images = [
        "nginx:1.25",
        "registry-3.example.com/app/api:v2",
        "registry-17.example.com/tools/x:1",
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]},
    }
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    request = {
        "uid": str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": "web",
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "bench"},
        "object": pod,
        "oldObject": None,
        "dryRun": False,
    }
    doc = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    return json.dumps(doc).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(data: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    exe = str(Path(sys.executable).with_name("pullkeeper"))
    port, hook = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULLKEEPER_")}
    env.update(PULLKEEPER_SYNC="false", PULLKEEPER_LOG_LEVEL="warning")
    proc = subprocess.Popen(
        [exe, "serve", "--data", str(data), "--port", str(port), "--webhook-port", str(hook)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, f"https://127.0.0.1:{hook}", data / "webhook" / "ca.crt"
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("pullkeeper serve did not become ready")


async def one(client: httpx.AsyncClient, url: str, body: bytes) -> bool:
    answer = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    return answer.status_code == 200 and "patch" in answer.json()["response"]


def _client(ca: Path, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca)), limits=limits)


async def paced(
    url: str, ca: Path, bodies: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    async with _client(ca, 64) as client:
        await one(client, url, bodies[0])  # warm the connection pool
        start = time.perf_counter()
        total = int(rate * seconds)

        async def send(i: int) -> None:
            nonlocal errors
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                ok = await one(client, url, bodies[i % len(bodies)])
            except httpx.HTTPError:
                ok = False
            errors += not ok
            latencies.append(time.perf_counter() - scheduled)

        await asyncio.gather(*(send(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed)


async def closed(
    url: str, ca: Path, bodies: list[bytes], connections: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    async with _client(ca, connections) as client:
        await one(client, url, bodies[0])
        start = time.perf_counter()
        end = start + seconds

        async def worker(w: int) -> None:
            nonlocal errors
            i = w
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    ok = await one(client, url, bodies[i % len(bodies)])
                except httpx.HTTPError:
                    ok = False
                errors += not ok
                latencies.append(time.perf_counter() - t0)
                i += connections

        await asyncio.gather(*(worker(w) for w in range(connections)))
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed)


def _summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "rate": len(ms) / elapsed,
        "p50": statistics.median(ms),
        "p99": ms[int(len(ms) * 0.99) - 1],
        "max": ms[-1],
        "errors": errors,
    }


LUA = """
local bodies, delay_ms, i = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  delay_ms = tonumber(args[2])
end
function request()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i % #bodies + 1])
end
function delay() return delay_ms end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS[unit]
    return float(text)


def wrk(
    url: str, bodies: Path, connections: int, seconds: float, rate: float | None
) -> dict[str, Any]:
    script = bodies.with_suffix(".lua")
    script.write_text(LUA)
    delay = 0 if rate is None else max(0, int(connections / rate * 1000))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "--timeout", "5s",
         "-s", str(script), url, "--", str(bodies), str(delay)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found: dict[str, Any] = {"errors": 0}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("50%", "99%"):
            found["p50" if words[0] == "50%" else "p99"] = _ms(words[1])
        elif line.strip().startswith("Latency") and len(words) >= 4:
            found["max"] = _ms(words[3])
        elif line.startswith("Requests/sec:"):
            found["rate"] = float(words[1])
        elif "requests in" in line:
            found["requests"] = int(words[0])
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            found["errors"] += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
    return found


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rates", default="250,500,750,1000")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        namespaces = seed(data)
        print(f"seeded {len(namespaces)} namespaces, {PROJECTS * CREDS} credentials, "
              f"{PROJECTS} policies in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        proc, base, ca = start(data)
        try:
            url = f"{base}/admission/mutate/bench"
            bodies = [review(ns) for ns in namespaces]
            lines = Path(tmp) / "reviews.txt"
            lines.write_bytes(b"\n".join(bodies) + b"\n")
            use_wrk = shutil.which("wrk") is not None
            print("load generator: " + ("wrk" if use_wrk else "asyncio + httpx (no wrk found)"))
            rows = []
            runs: list[tuple[str, float | None]] = [
                (f"paced {r}/s", float(r)) for r in args.rates.split(",")
            ]
            runs.append((f"closed, {args.connections} connections", None))
            if use_wrk:  # connections, TLS sessions and the server's first requests
                wrk(url, lines, args.connections, 2, None)
            else:
                asyncio.run(closed(url, ca, bodies, args.connections, 2))
            for name, rate in runs:
                before = cpu_of(proc.pid)
                if use_wrk:
                    result = wrk(url, lines, args.connections, args.duration, rate)
                elif rate is None:
                    result = asyncio.run(closed(url, ca, bodies, args.connections, args.duration))
                else:
                    result = asyncio.run(paced(url, ca, bodies, rate, args.duration))
                result["cpu_ms"] = (cpu_of(proc.pid) - before) * 1000 / max(1, result["requests"])
                rows.append((name, result))
        finally:
            proc.terminate()
            proc.wait(10)
    print()
    heads = (
        "load",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms/req",
        "errors",
    )
    widths = (23, 8, 5, 6, 6, 6, 17, 6)
    print(" | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    print(" | ".join("-" * w for w in widths))
    for name, r in rows:
        cells = (
            f"{name:<23}",
            f"{r['requests']:>8}",
            f"{r['rate']:>5.0f}",
            f"{r['p50']:>6.2f}",
            f"{r['p99']:>6.2f}",
            f"{r['max']:>6.1f}",
            f"{r['cpu_ms']:>17.2f}",
            f"{r['errors']:>6}",
        )
        print(" | ".join(cells))
    ok = [
        r["rate"]
        for name, r in rows
        if name.startswith("paced") and r["p99"] <= TARGET_MS and not r["errors"]
    ]
    at_target = next((r for name, r in rows if name == f"paced {TARGET_RATE}/s"), None)
    print()
    if at_target is not None:
        verdict = "met" if at_target["p99"] <= TARGET_MS else "MISSED"
        p99 = at_target["p99"]
        print(f"target p99 <= {TARGET_MS:g} ms at {TARGET_RATE}/s: {p99:.2f} ms, {verdict}")
    print(
        f"highest paced rate with p99 <= {TARGET_MS:g} ms: "
        + (f"{max(ok):.0f}/s" if ok else "none")
    )


if __name__ == "__main__":
    main()
