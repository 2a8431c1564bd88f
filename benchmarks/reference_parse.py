"""parse_normalized_named throughput, in references per second on one core.

A fixed-seed corpus of distinct, valid references is generated in five
categories (familiar names, tagged, digested, registries with ports, deep
paths), shuffled together and parsed in a single thread, pinned to one CPU
where the OS allows it. The table gives the median of 5 runs for the whole
corpus and for each category on its own, and, separately, for invalid
references (the error path), which are not part of the corpus.

Run: .venv/bin/python benchmarks/reference_parse.py
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from pullkeeper.core.reference import InvalidReference, parse_normalized_named

SEED = 20240611
PER_CATEGORY = 25_000
RUNS = 5

WORDS = (
    "nginx",
    "redis",
    "postgres",
    "mysql",
    "mongo",
    "node",
    "python",
    "golang",
    "alpine",
    "ubuntu",
    "debian",
    "busybox",
    "traefik",
    "grafana",
    "prometheus",
    "loki",
    "tempo",
    "vault",
    "consul",
    "etcd",
    "coredns",
    "pause",
    "kube-proxy",
    "api",
    "web",
    "worker",
    "billing",
    "orders",
    "payments",
    "auth",
    "gateway",
    "frontend",
    "backend",
    "search",
    "indexer",
    "scheduler",
    "cron",
    "batch",
    "etl",
    "ml-serving",
    "model-runner",
    "log_shipper",
    "metrics-agent",
)
TAGS = ("latest", "stable", "alpine", "slim", "bookworm", "main", "nightly")
HOSTS = (
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "registry.gitlab.com",
    "myacr.azurecr.io",
    "europe-west1-docker.pkg.dev",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "harbor.prod.example.com",
)


def _name(rng: random.Random) -> str:
    # A word, maybe a separator, a number: always a valid path component.
    return f"{rng.choice(WORDS)}{rng.choice(('', '', '-', '_', '.'))}{rng.randrange(10_000)}"


def _tag(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"{rng.randrange(30)}.{rng.randrange(30)}.{rng.randrange(100)}"
    if kind == 1:
        return f"v{rng.randrange(10)}.{rng.randrange(50)}-{rng.choice(TAGS)}"
    return f"{rng.choice(TAGS)}-{rng.randrange(100_000):05d}"


def _digest(rng: random.Random) -> str:
    return "sha256:" + hashlib.sha256(rng.randbytes(16)).hexdigest()


def familiar(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return _name(rng)
    return f"{_name(rng)}/{_name(rng)}"


def tagged(rng: random.Random) -> str:
    name = familiar(rng) if rng.random() < 0.5 else f"{rng.choice(HOSTS)}/{_name(rng)}"
    return f"{name}:{_tag(rng)}"


def digested(rng: random.Random) -> str:
    base = familiar(rng) if rng.random() < 0.4 else f"{rng.choice(HOSTS)}/{_name(rng)}/{_name(rng)}"
    tag = f":{_tag(rng)}" if rng.random() < 0.5 else ""
    return f"{base}{tag}@{_digest(rng)}"


def with_port(rng: random.Random) -> str:
    host = rng.choice(
        (
            f"registry-{rng.randrange(1000)}.example.com",
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "localhost",
            f"build-{rng.randrange(100)}.ci.internal",
        )
    )
    ref = f"{host}:{rng.choice((5000, 5001, 443, 8443, 30500))}/{_name(rng)}"
    if rng.random() < 0.5:
        ref += "/" + _name(rng)
    return ref + (f":{_tag(rng)}" if rng.random() < 0.7 else "")


def deep(rng: random.Random) -> str:
    depth = rng.randrange(3, 8)
    path = "/".join(_name(rng) for _ in range(depth))
    return f"{rng.choice(HOSTS)}/{path}" + (f":{_tag(rng)}" if rng.random() < 0.6 else "")


def invalid(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return f"{rng.choice(HOSTS)}/Team/{_name(rng)}"
    if kind == 1:
        return f"{_name(rng)}:{_tag(rng)}@sha256:{rng.randbytes(8).hex()}"
    if kind == 2:
        return f"{_name(rng)}::{_tag(rng)}"
    if kind == 3:
        return f"{_name(rng)}@md5:{rng.randbytes(16).hex()}"
    return hashlib.sha256(rng.randbytes(8)).hexdigest()


CATEGORIES: dict[str, Callable[[random.Random], str]] = {
    "familiar": familiar,
    "tagged": tagged,
    "digested": digested,
    "registry:port": with_port,
    "deep path": deep,
}


def distinct(make: Callable[[random.Random], str], rng: random.Random, n: int) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen[make(rng)] = None
    return list(seen)


def run_valid(refs: Sequence[str]) -> float:
    parse = parse_normalized_named
    t0 = time.perf_counter()
    for ref in refs:
        parse(ref)
    return time.perf_counter() - t0


def run_invalid(refs: Sequence[str]) -> float:
    parse = parse_normalized_named
    refused = 0
    t0 = time.perf_counter()
    for ref in refs:
        try:
            parse(ref)
        except InvalidReference:
            refused += 1
    elapsed = time.perf_counter() - t0
    if refused != len(refs):
        sys.exit(f"FAIL: {len(refs) - refused} 'invalid' references parsed")
    return elapsed


def rate(run: Callable[[Sequence[str]], float], refs: Sequence[str]) -> tuple[float, list[float]]:
    run(refs[:2000])  # warm-up
    rates = [len(refs) / run(refs) for _ in range(RUNS)]
    return statistics.median(rates), rates


def main() -> None:
    cpu = ""
    if hasattr(os, "sched_setaffinity"):
        cpu_id = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu_id})
        cpu = f", pinned to CPU {cpu_id}"
    print(f"python {platform.python_version()} on {platform.machine()}, one thread{cpu}")

    rng = random.Random(SEED)
    groups = {name: distinct(make, rng, PER_CATEGORY) for name, make in CATEGORIES.items()}
    seen: set[str] = set()
    for name, refs in groups.items():  # a reference made in two categories counts in the first
        groups[name] = [r for r in refs if not (r in seen or seen.add(r))]
    corpus = [r for refs in groups.values() for r in refs]
    rng.shuffle(corpus)
    bad = [r for r in corpus if not _valid(r)]
    if bad:
        sys.exit(f"FAIL: the corpus holds references the parser refuses, e.g. {bad[:3]}")
    invalid_refs = distinct(invalid, rng, 10_000)
    if any(_valid(r) for r in invalid_refs):
        sys.exit("FAIL: an 'invalid' reference parsed")

    rows = []
    median, rates = rate(run_valid, corpus)
    rows.append(["whole corpus", f"{len(corpus):,}", median, min(rates), max(rates)])
    for name, refs in groups.items():
        median, rates = rate(run_valid, refs)
        rows.append([name, f"{len(refs):,}", median, min(rates), max(rates)])
    median, rates = rate(run_invalid, invalid_refs)
    rows.append(
        ["invalid (not in corpus)", f"{len(invalid_refs):,}", median, min(rates), max(rates)]
    )

    print()
    print(f"parse_normalized_named, references/s (median of {RUNS} runs)")
    headers = ["set", "distinct refs", "median refs/s", "min refs/s", "max refs/s", "µs/ref"]
    cells = [
        [str(r[0]), str(r[1]), f"{r[2]:,.0f}", f"{r[3]:,.0f}", f"{r[4]:,.0f}", f"{1e6 / r[2]:.2f}"]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [headers, *cells]) for i in range(len(headers))]
    print(" | ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(x.rjust(w) for x, w in zip(c, widths, strict=True)))
    print()
    print("examples:", ", ".join(groups[name][0] for name in groups))


def _valid(ref: str) -> bool:
    try:
        parse_normalized_named(ref)
    except InvalidReference:
        return False
    return True


if __name__ == "__main__":
    main()
