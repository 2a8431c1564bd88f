"""`/admission/mutate` of a real `pullkeeper serve --webhook-port` under load, over TLS.

The store (SQLite) is seeded through the service layer: one cluster, 100
projects of 10 namespaces (1,000 namespaces), 20 project-scoped credentials
per project (so 20 credentials apply in every namespace, over 20 registries)
and a policy per project (default registry, allowlist of 21 entries,
always-pull). The review is a CREATE of a 3-container pod (one unqualified
image, rewritten; two from credentialed registries), in a namespace chosen
round-robin; every answer must carry a patch, or the run counts an error.

Load, from this process over loopback (the server runs in its own process on
the same two cores), with asyncio and keep-alive httpx connections verifying
the webhook's generated CA:

- paced: a fixed total rate for --duration seconds; latency is counted from
  each request's scheduled send time, so a server that falls behind is charged
  for the queue; the highest rate whose p99 is <= 5 ms is reported;
- closed: --connections clients back to back, the throughput ceiling.

Run: .venv/bin/python benchmarks/admission_load.py [--duration 10] [--rates 250,500,750,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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


def seed(data: Path) -> list[str]:
    server = Server.open(Settings(data=data, sync=False))
    names = []
    with server.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "bench")
        for p in range(PROJECTS):
            project = clusters.create_project(session, SYSTEM, c, f"team-{p}")
            for n in range(PER_PROJECT):
                name = f"team-{p}-ns-{n}"
                clusters.put_namespace(session, SYSTEM, c, name, project)
                names.append(name)
            scope = credentials.resolve_scope(session, SYSTEM, "project", c, project, None)
            for i in range(CREDS):
                credentials.create(
                    session,
                    SYSTEM,
                    server.vault,
                    name=f"pull-{i}",
                    scope=scope,
                    provider="custom",
                    server=f"registry-{i}.example.com",
                    username="robot",
                    password=f"bench-pw-{p}-{i}",
                )
            allow = ["docker.io", *(f"registry-{i}.example.com" for i in range(CREDS))]
            policies.put(
                session,
                SYSTEM,
                c,
                project,
                {"default_registry": "registry-0.example.com/hub", "allowlist": allow,
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
    import socket

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
            url = f"{base}/admission/mutate?cluster=bench"
            bodies = [review(ns) for ns in namespaces]
            rows = []
            for rate in (float(r) for r in args.rates.split(",")):
                rows.append(
                    (
                        f"paced {rate:.0f}/s",
                        asyncio.run(paced(url, ca, bodies, rate, args.duration)),
                    )
                )
            rows.append((
                f"closed, {args.connections} connections",
                asyncio.run(closed(url, ca, bodies, args.connections, args.duration)),
            ))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(10)
    print()
    print("load                    | requests | req/s | p50 ms | p99 ms | max ms | errors")
    print("----------------------- | -------- | ----- | ------ | ------ | ------ | ------")
    for name, r in rows:
        print(f"{name:<23} | {r['requests']:>8} | {r['rate']:>5.0f} | {r['p50']:>6.2f} | "
              f"{r['p99']:>6.2f} | {r['max']:>6.1f} | {r['errors']:>6}")  # fmt: skip
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
