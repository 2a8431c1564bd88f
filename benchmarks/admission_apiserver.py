"""Pod creates through a real kube-apiserver, with and without pullkeeper's webhooks in the path.

The control plane is `scripts/kube`'s (kube-apiserver v1.34, etcd, the controllers); the
webhooks are those `pullkeeper webhook manifests --url ... --cluster bench` prints, applied
with kubectl, calling a real `pullkeeper serve --webhook-port` over TLS on 127.0.0.1. The
store (SQLite) is seeded as in admission_load.py, smaller: one project with --namespaces
namespaces, 20 project-scoped credentials over 20 registries, and a policy (default
registry, allowlist of 21 entries, always-pull). Every pod is what `kubectl run` posts, one
container of an unqualified image (rewritten by the mutating webhook, then held against the
allowlist by the validating one); with the webhooks registered, each stored pod must carry
the rewritten image and a pull secret, or the run counts an error.

Rounds alternate, without then with the webhooks (registered or removed between rounds),
--rounds times each, so both see the same machine. A round posts --pods pods from
--clients threads (one keep-alive connection each, as many kubectl processes would use),
and reports creates per second and the latency of each POST (p50, p99). The pods stay
Pending (no node); they are deleted between rounds.

Run: .venv/bin/python benchmarks/admission_apiserver.py [--pods 400] [--clients 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kube.real import ControlPlane  # noqa: E402

from admission_load import DEFAULT_REGISTRY, seed, start  # noqa: E402


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"run": name}},
        "spec": {
            "containers": [{"name": name, "image": "nginx:1.25"}],
            "restartPolicy": "Never",
        },
    }


def round_of(
    plane: ControlPlane, namespaces: list[str], args: argparse.Namespace, tag: str, hooked: bool
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    verify = ssl.create_default_context(cafile=str(plane.ca_file))
    headers = {"Authorization": f"Bearer {plane.token}"}

    def client(worker: int) -> None:
        with httpx.Client(base_url=plane.url, headers=headers, verify=verify, timeout=30) as http:
            for i in range(worker, args.pods, args.clients):
                ns = namespaces[i % len(namespaces)]
                t0 = time.perf_counter()
                answer = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(f"{tag}-{i}"))
                took = time.perf_counter() - t0
                with lock:
                    latencies.append(took)
                    if answer.status_code != 201:
                        errors.append(f"{answer.status_code} {answer.text[:200]}")
                    elif hooked and not _mutated(answer.json()):
                        errors.append("stored without pullkeeper's changes")

    threads = [threading.Thread(target=client, args=(w,)) for w in range(args.clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    for ns in namespaces:
        plane.http.delete(f"/api/v1/namespaces/{ns}/pods")
    ms = sorted(x * 1000 for x in latencies)
    return {
        "rate": len(ms) / elapsed,
        "p50": statistics.median(ms),
        "p99": ms[max(0, int(len(ms) * 0.99) - 1)],
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def _mutated(stored: dict[str, Any]) -> bool:
    (container,) = stored["spec"]["containers"]
    return (
        container["image"] == f"{DEFAULT_REGISTRY}/library/nginx:1.25"
        and container["imagePullPolicy"] == "Always"
        and len(stored["spec"].get("imagePullSecrets") or []) == 1
    )


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        ["kubectl", "--kubeconfig", str(plane.directory / "kubeconfig"), *args],
        input=stdin,
        text=True,
        capture_output=True,
        check=True,
        timeout=60,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=400, help="pods per round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind")
    parser.add_argument("--namespaces", type=int, default=10)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("pullkeeper"))
    with tempfile.TemporaryDirectory(prefix="pk-bench-adm-api-") as tmp:
        base = Path(tmp)
        plane = ControlPlane(base / "kube").start()
        proc = None
        try:
            kubeconfig = str(plane.kubeconfig(base / "kubeconfig"))
            names = seed(base / "data", 1, args.namespaces, kubeconfig)
            for name in names:
                plane.http.post(
                    "/api/v1/namespaces", json={"metadata": {"name": name}}
                ).raise_for_status()
            proc, hook_url, _ca = start(base / "data")
            printed = [exe, "webhook", "manifests", "--data", str(base / "data")]
            printed += ["--url", hook_url, "--cluster", "bench"]
            manifests = subprocess.run(printed, capture_output=True, text=True, check=True).stdout
            kubectl(plane, "create", "namespace", "pullkeeper")
            # Each namespace has its default ServiceAccount before pods are posted there.
            deadline = time.monotonic() + 30
            for name in names:
                while plane.http.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").is_error:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"no default ServiceAccount in {name}")
                    time.sleep(0.1)
            results: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
            for r in range(args.rounds):
                for kind in ("without", "with"):
                    if kind == "with":
                        kubectl(plane, "apply", "-f", "-", stdin=manifests)
                    else:
                        kubectl(plane, "delete", "--ignore-not-found", "-f", "-", stdin=manifests)
                    time.sleep(1)  # the API server picks webhook configurations up from a watch
                    results[kind].append(
                        round_of(plane, names, args, f"{kind}-{r}", kind == "with")
                    )
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
            plane.stop()
    _table(results, args)


def _table(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"# {platform.node()}: {args.pods} pods a round from {args.clients} clients, "
          f"{args.rounds} rounds of each, interleaved")  # fmt: skip
    print(f"{'webhooks':10} {'creates/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    summary = {}
    for kind, rounds in results.items():
        for r in rounds:
            print(f"{kind:10} {r['rate']:10.1f} {r['p50']:8.1f} {r['p99']:8.1f} {r['errors']:7d}")
            if r["first_error"]:
                print(f"    first error: {r['first_error']}")
        summary[kind] = statistics.median(r["rate"] for r in rounds)
    print(
        f"median creates/s: without {summary['without']:.1f}, with {summary['with']:.1f} "
        f"(with/without = {summary['with'] / summary['without']:.2f})"
    )


if __name__ == "__main__":
    main()
