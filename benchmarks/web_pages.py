"""Server-side rendering time of the web UI's pages on a store of 10,000 credentials.

The store is seeded as benchmarks/server_load.py seeds it (through the service
layer in this process: 4 clusters, 200 projects, 2,000 namespaces, 10,000
credentials over 9 providers). Then the real `pullkeeper serve` (the
executable next to this interpreter) starts on it, an admin user logs in
through the login form, and each page is requested 50 times in a row, one
request at a time, over one keep-alive connection on loopback:

  registries, first page     GET /credentials
  registries, filtered       GET /credentials?cluster=cluster-0&provider=harbor&q=harbor
  registries, page 100       GET /credentials?page=100 (an older link: offset paging)
  registries, page 100 by    GET /credentials?page=100&cursor=... (the page the Next link
    cursor                   leads to after 99 clicks from page 1: keyset paging)
  registry detail            GET /credentials/<id>
  registries, superseded     GET /credentials?state=superseded
  policies                   GET /policies?cluster=cluster-0
  projects                   GET /projects
  project detail             GET /projects/<id>
  pull check form            GET /checks
  deploy form                GET /workloads/new
  audit, first page          GET /audit
  users                      GET /users

Timing starts once the server is idle (its workers' first pass over the store
after start is done). Latency is the client's wall clock around one request after 5 unmeasured
ones; with one request at a time on loopback it is the server's time plus
well under a millisecond of transport. Server CPU per request is the serve
process's utime+stime over the 50 requests divided by 50. The target is
<= 100 ms per page (p95); for the Registries list, <= 10 ms of server CPU at
any page, shown as page 100's CPU against page 1's.

Run: .venv/bin/python benchmarks/web_pages.py [--credentials 10000] [--requests 50]
"""

from __future__ import annotations

import argparse
import html
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_load import CREDENTIALS, TOKEN, Serve, executable, seed, table

TARGET_MS = 100.0
LIST_TARGET_MS = 10.0  # server CPU per Registries page, at any depth
WARMUP = 5
USER, PASSWORD = "bench-admin", "bench-admin-password-1"  # throwaway benchmark login


def log_in(serve: Serve) -> httpx.Client:
    """A browser-like client holding a session cookie from the login form."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"username": USER, "password": PASSWORD, "admin": True}
    httpx.post(serve.url + "/api/v1/users", json=body, headers=headers).raise_for_status()
    client = httpx.Client(base_url=serve.url, timeout=60, trust_env=False)
    form = client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if not match:
        sys.exit("FAIL: the login form has no CSRF token")
    r = client.post("/login", data={"username": USER, "password": PASSWORD, "csrf": match[1]})
    if r.status_code != 303:
        sys.exit(f"FAIL: login answered {r.status_code}: {r.text[:300]}")
    return client


def first_id(serve: Serve, collection: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.get(f"{serve.url}/api/v1/{collection}", params={"limit": 1}, headers=headers)
    r.raise_for_status()
    found: str = r.json()["items"][0]["id"]
    return found


def measure(
    serve: Serve, client: httpx.Client, path: str, requests: int, expect: str
) -> tuple[list[float], float]:
    """Wall-clock seconds of each request, and the server's CPU seconds per request."""
    for _ in range(WARMUP):
        client.get(path).raise_for_status()
    times: list[float] = []
    cpu0 = serve.cpu_seconds()
    for _ in range(requests):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t0)
        if r.status_code != 200 or expect not in r.text:
            sys.exit(f"FAIL: GET {path} answered {r.status_code} without {expect!r}")
    return times, (serve.cpu_seconds() - cpu0) / requests


def settle(serve: Serve, limit: float = 120.0) -> float:
    """Wait until the server is idle (under 5% of a CPU for 1 s); the seconds waited.

    Right after start the server's workers make their first pass over the store in the
    same process; pages timed meanwhile measure that work, not the page.
    """
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        cpu0 = serve.cpu_seconds()
        time.sleep(1.0)
        if serve.cpu_seconds() - cpu0 < 0.05:
            break
    return time.perf_counter() - t0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=int, default=CREDENTIALS)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}"
    )
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"server: {executable()} serve (uvicorn, 1 process), SQLite store")

    base = Path(tempfile.mkdtemp(prefix="pk-bench-web-"))
    try:
        data = base / "seeded"
        print(f"seeding {args.credentials} credentials ...", flush=True)
        seeded = seed(data, "", args.credentials)
        print(f"seeded in {seeded.seconds:.1f} s", flush=True)
        serve = Serve(data, "")
        try:
            client = log_in(serve)
            cred_id, project_id = first_id(serve, "credentials"), first_id(serve, "projects")
            deep = next_link(client, "/credentials", 99)
            print(f"server idle after {settle(serve):.1f} s", flush=True)
            pages = [
                ("registries, first page", "/credentials", "registries, page 1 of"),
                (
                    "registries, filtered",
                    "/credentials?cluster=cluster-0&provider=harbor&q=harbor",
                    "<tbody>",
                ),
                ("registries, page 100", "/credentials?page=100", "page 100 of"),
                ("registries, page 100 by cursor", deep, "page 100 of"),
                ("registry detail", f"/credentials/{cred_id}", "<h2>Delivery</h2>"),
                ("registries, superseded", "/credentials?state=superseded", "<tbody>"),
                ("policies", "/policies?cluster=cluster-0", "Cluster cluster-0"),
                ("projects", "/projects", "<tbody>"),
                ("project detail", f"/projects/{project_id}", "Members</h2>"),
                ("pull check form", "/checks", "<form"),
                ("deploy form", "/workloads/new", "<form"),
                ("audit, first page", "/audit", "<tbody>"),
                ("users", "/users", "<tbody>"),
            ]
            rows = []
            cpus: dict[str, float] = {}
            for label, path, expect in pages:
                print(f"{label} ...", flush=True)
                times, cpu = measure(serve, client, path, args.requests, expect)
                cpus[label] = cpu
                median, high = statistics.median(times) * 1000, p95(times) * 1000
                rows.append(
                    (
                        label,
                        str(len(times)),
                        f"{median:.1f}",
                        f"{high:.1f}",
                        f"{max(times) * 1000:.1f}",
                        f"{cpu * 1000:.1f}",
                        "met" if high <= TARGET_MS else "MISSED",
                    )
                )
            client.close()
        finally:
            serve.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    table(
        f"Web pages on {args.credentials} credentials: {args.requests} sequential requests "
        f"each after {WARMUP} warm-up, one keep-alive connection, loopback "
        f"(target p95 <= {TARGET_MS:g} ms)",
        ("page", "requests", "median ms", "p95 ms", "max ms", "server CPU ms/req", "target"),
        rows,
    )
    first = cpus["registries, first page"]
    print()
    print(f"Registries list, server CPU per page (target <= {LIST_TARGET_MS:g} ms at any page):")
    for label in (
        "registries, first page",
        "registries, page 100",
        "registries, page 100 by cursor",
    ):
        ms = cpus[label] * 1000
        verdict = "met" if ms <= LIST_TARGET_MS else "MISSED"
        print(f"  {label:32} {ms:6.1f} ms  x{cpus[label] / first:.2f} of page 1  {verdict}")


def next_link(client: httpx.Client, path: str, clicks: int) -> str:
    """Where the Next page link leads after `clicks` clicks from `path`."""
    for _ in range(clicks):
        found = re.search(r'<a href="([^"]+)" rel="next"', client.get(path).text)
        if found is None:
            sys.exit(f"FAIL: no Next page link on {path}")
        path = html.unescape(found.group(1))
    return path


if __name__ == "__main__":
    main()
