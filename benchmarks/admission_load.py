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

With wrk, two more sections (--sections load,baseline,mixed chooses):

- baseline: a bare uvicorn ASGI application that only parses the review
  (orjson) and answers a fixed patch, on the same TLS certificate and with the
  uvicorn settings of the webhook's listener, run in its own process; paced
  rounds at 500/s alternate between it and pullkeeper's webhook (--rounds of
  each), and the median CPU per review of each side and their ratio are shown;
- mixed: mutates at 500/s with 0, 10 and 100 denials/s beside them
  (validations of a pod whose image the policy does not allow, from a second
  wrk), the mixes interleaved over --rounds; the mutates' p50/p99, the CPU per
  review (mutates and denials together) and the p99 ratio to the mix without
  denials.

Run: .venv/bin/python benchmarks/admission_load.py [--duration 10] [--rates 250,500,750,1000]
     [--sections load,baseline,mixed] [--rounds 3]
     (apt-get install wrk for the wrk load generator)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pullkeeper.services import clusters, credentials, policies, webhook_tls  # noqa: E402
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


DENIED_IMAGE = "ghcr.io/elsewhere/app:1"  # outside every project's allowlist


def review(namespace: str, images: list[str] | None = None) -> bytes:
    images = images or [
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


# The bare handler's answer: the review's uid in an AdmissionReview with a fixed patch.
_FIXED_PATCH = base64.b64encode(b'[{"op":"add","path":"/spec/imagePullSecrets","value":[]}]')
_BARE_HEAD, _BARE_TAIL = orjson.dumps(
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
     "response": {"uid": "UID", "allowed": True, "patchType": "JSONPatch",
                  "patch": _FIXED_PATCH.decode()}}
).split(b'"UID"')  # fmt: skip


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an AdmissionReview handler does: read, parse, answer a fixed patch."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    uid = orjson.loads(body)["request"]["uid"]
    payload = _BARE_HEAD + orjson.dumps(uid) + _BARE_TAIL
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def serve_bare(port: int, cert: str, key: str) -> None:
    """The bare handler with the uvicorn settings of pullkeeper's webhook listener
    (cli/serve.py: TLS, no proxy headers, no server header, log level warning)."""
    import uvicorn  # noqa: PLC0415

    uvicorn.run(
        bare_app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key,
        timeout_graceful_shutdown=10, proxy_headers=False, log_level="warning",
        server_header=False,
    )  # fmt: skip


def start_bare(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    found = webhook_tls.files(Settings(data=data))  # the certificate serve made
    proc = subprocess.Popen(
        [sys.executable, __file__, "--bare", str(port), str(found.cert), str(found.key)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"https://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the bare handler did not start")


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
    return wrk_result(wrk_start(url, bodies, connections, seconds, rate))


def wrk_start(
    url: str, bodies: Path, connections: int, seconds: float, rate: float | None, threads: int = 2
) -> subprocess.Popen[str]:
    script = bodies.with_suffix(".lua")
    script.write_text(LUA)
    delay = 0 if rate is None else max(0, int(connections / rate * 1000))
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency",
         "--timeout", "5s", "-s", str(script), url, "--", str(bodies), str(delay)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def wrk_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"wrk failed with status {proc.returncode}")
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


def _cpu_ms(pid: int, before: float, requests: int) -> float:
    return (cpu_of(pid) - before) * 1000 / max(1, requests)


def baseline(
    hook: tuple[int, str], bare: tuple[int, str], bodies: Path, args: argparse.Namespace
) -> None:
    """Paced rounds at TARGET_RATE, alternating between the webhook and the bare handler."""
    sides = {"pullkeeper": hook, "bare": bare}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    p99: dict[str, list[float]] = {name: [] for name in sides}
    for _, url in sides.values():
        wrk(url, bodies, args.connections, 2, None)  # connections, TLS sessions, warm-up
    for _ in range(args.rounds):
        for name, (pid, url) in sides.items():
            before = cpu_of(pid)
            r = wrk(url, bodies, args.connections, args.duration, TARGET_RATE)
            assert not r["errors"], (name, r)
            cpu[name].append(_cpu_ms(pid, before, r["requests"]))
            p99[name].append(r["p99"])
    print(f"\nbaseline: paced {TARGET_RATE}/s, {args.rounds} interleaved rounds of each side")
    print("side       | CPU ms/review (median, rounds)          | p99 ms (median)")
    for name in sides:
        rounds = ", ".join(f"{x:.3f}" for x in cpu[name])
        print(f"{name:<10} | {statistics.median(cpu[name]):.3f} ({rounds}) | "
              f"{statistics.median(p99[name]):.2f}")  # fmt: skip
    ratio = statistics.median(cpu["pullkeeper"]) / statistics.median(cpu["bare"])
    print(f"CPU per review, pullkeeper / bare: {ratio:.2f}x (target <= 1.25x)")


def mixed(hook: tuple[int, str], mutates: Path, denials: Path, args: argparse.Namespace) -> None:
    """Mutates at TARGET_RATE with 0, 10 and 100 denied validations a second beside them."""
    pid, base = hook
    mixes = (0, 10, 100)
    found: dict[int, list[dict[str, Any]]] = {d: [] for d in mixes}
    for _ in range(args.rounds):
        for d in mixes:
            before = cpu_of(pid)
            denying = None
            if d:
                conns = max(2, d // 10)  # each waits conns/d s between its requests
                denying = wrk_start(
                    f"{base}/admission/validate/bench", denials, conns, args.duration, d, 1
                )
            r = wrk(f"{base}/admission/mutate/bench", mutates, args.connections,
                    args.duration, TARGET_RATE)  # fmt: skip
            denied = wrk_result(denying) if denying else {"requests": 0, "errors": 0}
            r["denials"] = denied["requests"] / args.duration
            r["cpu_ms"] = _cpu_ms(pid, before, r["requests"] + denied["requests"])
            r["errors"] += denied["errors"]  # a denial is a 200 answer: an error is an error
            found[d].append(r)
    print(f"\nmixed: mutates paced {TARGET_RATE}/s, {args.rounds} interleaved rounds")
    print(
        "denials/s | sent/s | mutate p50 ms | mutate p99 ms | p99 vs none | CPU ms/review | errors"
    )
    alone = statistics.median(r["p99"] for r in found[0])
    for d in mixes:
        rs = found[d]
        p99 = statistics.median(r["p99"] for r in rs)
        print(f"{d:>9} | {statistics.median(r['denials'] for r in rs):>6.1f} | "
              f"{statistics.median(r['p50'] for r in rs):>13.2f} | {p99:>13.2f} | "
              f"{p99 / alone:>10.2f}x | {statistics.median(r['cpu_ms'] for r in rs):>13.3f} | "
              f"{sum(r['errors'] for r in rs):>6}")  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["--bare"]:  # the baseline's own process
        serve_bare(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rates", default="250,500,750,1000")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sections", default="load,baseline,mixed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    use_wrk = shutil.which("wrk") is not None
    print("load generator: " + ("wrk" if use_wrk else "asyncio + httpx (no wrk found)"))
    if not use_wrk and sections - {"load"}:
        print("baseline and mixed: skipped, they need wrk")
        sections &= {"load"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        namespaces = seed(data)
        print(f"seeded {len(namespaces)} namespaces, {PROJECTS * CREDS} credentials, "
              f"{PROJECTS} policies in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        proc, base, ca = start(data)
        bare = None
        try:
            bodies = [review(ns) for ns in namespaces]
            lines = Path(tmp) / "reviews.txt"
            lines.write_bytes(b"\n".join(bodies) + b"\n")
            if "load" in sections:
                load(proc.pid, f"{base}/admission/mutate/bench", ca, bodies, lines, use_wrk, args)
            if "baseline" in sections:
                bare = start_bare(data)
                sides = (proc.pid, f"{base}/admission/mutate/bench")
                baseline(sides, (bare[0].pid, f"{bare[1]}/admission/mutate/bench"), lines, args)
            if "mixed" in sections:
                denials = Path(tmp) / "denials.txt"
                denied = [review(ns, [DENIED_IMAGE]) for ns in namespaces]
                denials.write_bytes(b"\n".join(denied) + b"\n")
                mixed((proc.pid, base), lines, denials, args)
        finally:
            for p in (proc, bare[0] if bare else None):
                if p is not None:
                    p.terminate()
                    p.wait(10)


def load(
    pid: int,
    url: str,
    ca: Path,
    bodies: list[bytes],
    lines: Path,
    use_wrk: bool,
    args: argparse.Namespace,
) -> None:
    """Paced runs at --rates and a closed loop: the table and the p99 verdict."""
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
        before = cpu_of(pid)
        if use_wrk:
            result = wrk(url, lines, args.connections, args.duration, rate)
        elif rate is None:
            result = asyncio.run(closed(url, ca, bodies, args.connections, args.duration))
        else:
            result = asyncio.run(paced(url, ca, bodies, rate, args.duration))
        result["cpu_ms"] = _cpu_ms(pid, before, result["requests"])
        rows.append((name, result))
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
