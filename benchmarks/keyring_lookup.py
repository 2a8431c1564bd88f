"""Keyring.lookup against the kubelet's linear scan, at 1k, 10k and 100k entries.

The keyring is filled with a fixed-seed mix of the addresses people put in
credential files (plain hosts, host:port, https:// and /v1/ /v2/ forms, DNS
wildcards, repository paths). Each lookup image is timed on its own with
perf_counter_ns; the table gives the median and p95 per lookup. The scan is
written here, as the kubelet writes it (BasicDockerKeyring.Lookup): every key,
in reverse byte order, is parsed again as a URL and compared by port, label
count, path prefix and per-label filepath.Match, then the index.docker.io
fallback. It shares only the Go url/glob helpers with the core, not the index.
Both must return the same credentials in the same order for every image, or
the script exits with status 1.

Run: .venv/bin/python benchmarks/keyring_lookup.py
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence

from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.go import glob
from pullkeeper.core.go import url as gourl
from pullkeeper.core.keyring import Keyring

SEED = 20240611
SIZES = (1_000, 10_000, 100_000)
SOURCES = 8  # credential files (pod Secrets) the entries are spread over, added in order
# Share of entries of each shape; the numbers in the names are drawn from
# range(size), so some keys repeat and carry several credentials.
MIX = (
    ("plain", 0.20),
    ("port", 0.10),
    ("https", 0.10),
    ("v1v2", 0.08),
    ("wild_region", 0.10),
    ("wild_corp", 0.05),
    ("path_team", 0.15),
    ("path_app", 0.22),
)
INDEXED_SECONDS = 3.0  # time budget per size for the indexed lookups
INDEXED_MAX_ROUNDS = 500
SCAN_ROUNDS = {1_000: 5, 10_000: 1, 100_000: 1}

Cred = tuple[str, str, str, str, str]  # registry, username, password, email, source


# --- the credential files -----------------------------------------------------


def _address(kind: str, r: int, rng: random.Random) -> str:
    if kind == "plain":
        return f"registry-{r}.example.com"
    if kind == "port":
        return f"registry-{r}.example.com:{rng.choice((5000, 5001, 8443))}"
    if kind == "https":
        return f"https://mirror-{r}.example.net" + rng.choice(("", "/"))
    if kind == "v1v2":
        return rng.choice(
            (
                f"https://cr-{r}.example.org/v2/",
                f"cr-{r}.example.org/v1/",
                f"https://cr-{r}.example.org/v2/ns-{r % 50}",
            )
        )
    if kind == "wild_region":
        return f"*.region-{r}.example.com"
    if kind == "wild_corp":
        return f"*.*.corp-{r}.internal"
    if kind == "path_team":
        return f"quay.io/team-{r}"
    if kind == "path_app":
        return f"quay.io/team-{r}/app-{rng.randrange(20)}"
    raise AssertionError(kind)


def make_entries(size: int, seed: int) -> list[list[tuple[str, AuthEntry]]]:
    """size (registry, AuthEntry) pairs, split into SOURCES credential files."""
    rng = random.Random(seed * 1_000_003 + size)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    # Docker Hub as docker login writes it, and one org path on it.
    pairs: list[tuple[str, AuthEntry]] = [
        ("https://index.docker.io/v1/", AuthEntry("hub-0", "pw", "")),
        ("docker.io/acme", AuthEntry("hub-acme", "pw", "")),
    ]
    while len(pairs) < size:
        i = len(pairs)
        kind = rng.choices(kinds, weights)[0]
        address = _address(kind, rng.randrange(size), rng)
        pairs.append((address, AuthEntry(f"user-{i}", f"pw-{i}", f"u{i}@example.com")))
    rng.shuffle(pairs)
    per = math.ceil(size / SOURCES)
    return [pairs[i : i + per] for i in range(0, size, per)]


def source_name(n: int) -> str:
    return f"team-{n}/pull-secret"


def existing(files: Sequence[Sequence[tuple[str, AuthEntry]]], prefix: str) -> list[str]:
    return sorted({r for f in files for r, _ in f if r.startswith(prefix)})


def make_images(
    files: Sequence[Sequence[tuple[str, AuthEntry]]], size: int
) -> list[tuple[str, str]]:
    """(category, repository name as the kubelet passes it to Lookup), 20 of them."""
    rng = random.Random(SEED + size)

    def number(addr: str, prefix: str) -> str:
        return addr[len(prefix) :].split(".", 1)[0].split("/", 1)[0]

    apps = existing(files, "quay.io/team-")
    deep = [a for a in apps if a.count("/") == 2]
    shallow = [a for a in apps if a.count("/") == 1]
    plain = [a for a in existing(files, "registry-") if ":" not in a]
    ports = [a for a in existing(files, "registry-") if ":" in a]
    mirrors = existing(files, "https://mirror-")
    regions = existing(files, "*.region-")
    corps = existing(files, "*.*.corp-")
    crs = [a for a in existing(files, "https://cr-") if a.endswith("/v2/")]
    images = [
        *(("path", a + "/web") for a in rng.sample(deep, 2)),
        *(("path", a + "/tools/builder") for a in rng.sample(shallow, 2)),
        ("path", rng.choice(shallow) + "/app-999"),
        ("host", rng.choice(plain) + "/platform/api"),
        ("host", rng.choice(ports) + "/ci/runner"),
        ("host", rng.choice(mirrors).removeprefix("https://").rstrip("/") + "/library/redis"),
        ("host", rng.choice(crs).removeprefix("https://").removesuffix("/v2/") + "/svc"),
        *(
            ("wildcard", f"api.region-{number(a, '*.region-')}.example.com/svc/orders")
            for a in rng.sample(regions, 2)
        ),
        ("wildcard", f"k8s.eu.corp-{number(rng.choice(corps), '*.*.corp-')}.internal/ops/agent"),
        ("nothing", "ghcr.io/someorg/tool"),
        ("nothing", "harbor.prod.example.com/platform/api"),
        ("nothing", f"registry-{size + 7}.example.com/none"),
        ("nothing", "quay.io/nobody/app"),
        ("docker hub", "docker.io/library/nginx"),
        ("docker hub", "docker.io/acme/billing"),
        ("docker hub", "docker.io/bitnami/postgresql"),
        ("docker hub", "index.docker.io/library/busybox"),
    ]
    assert len(images) == 20, len(images)
    return images


# --- the kubelet's scan, written out -------------------------------------------


def _go_bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _parse_schemeless(s: str) -> gourl.URL | None:
    try:
        return gourl.parse("https://" + s)
    except gourl.URLError:
        return None


def _split_url(u: gourl.URL) -> tuple[list[str], str]:
    try:
        host, port = gourl.split_host_port(u.host)
    except ValueError:
        host, port = u.host, ""
    return host.split("."), port


def _urls_match(key: gourl.URL, parts: list[str], port: str, path: str) -> bool:
    key_parts, key_port = _split_url(key)
    if key_port != port or len(key_parts) != len(parts) or not path.startswith(key.path):
        return False
    try:
        return all(glob.match(p, t) for p, t in zip(key_parts, parts, strict=True))
    except glob.BadPattern:
        return False


def _kubelet_default_registry_match(image: str) -> bool:
    # keyring.go isDefaultRegistryMatch: no exception for "localhost".
    first, slash, _ = image.partition("/")
    if not first:
        return False
    if not slash:
        return True
    if first in ("docker.io", "index.docker.io"):
        return True
    return "." not in first and ":" not in first


class LinearScan:
    """BasicDockerKeyring: a map of keys and a reverse-sorted index, scanned per lookup."""

    def __init__(self) -> None:
        self.creds: dict[str, list[Cred]] = {}
        self.index: list[str] = []

    def add(self, auths: Sequence[tuple[str, AuthEntry]], source: str) -> None:
        for registry, entry in auths:
            value = registry
            if not value.startswith(("https://", "http://")):
                value = "https://" + value
            try:
                parsed = gourl.parse(value)
            except gourl.URLError:
                continue
            path = parsed.path
            if path.startswith(("/v2/", "/v1/")):
                path = path[3:]
            key = parsed.host + path if path and path != "/" else parsed.host
            cred = (registry, entry.username, entry.password, entry.email, source)
            self.creds.setdefault(key, []).append(cred)
        self.index = sorted(self.creds, key=_go_bytes, reverse=True)

    def lookup(self, image: str) -> list[Cred]:
        found: list[Cred] = []
        target = _parse_schemeless(image)
        if target is not None:
            parts, port = _split_url(target)
            for key in self.index:
                parsed = _parse_schemeless(key)
                if parsed is not None and _urls_match(parsed, parts, port, target.path):
                    found.extend(self.creds[key])
        if found:
            return found
        if _kubelet_default_registry_match(image):
            return list(self.creds.get("index.docker.io", ()))
        return []


# --- measuring -------------------------------------------------------------------


def indexed_lookup(keyring: Keyring) -> Callable[[str], list[Cred]]:
    def lookup(image: str) -> list[Cred]:
        return [
            (c.registry, c.username, c.password, c.email, c.source) for c in keyring.lookup(image)
        ]

    return lookup


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def time_lookups(
    lookup: Callable[[str], object], images: Sequence[str], rounds: int, budget: float
) -> dict[str, list[float]]:
    """Per-image samples in µs; stops after rounds or once budget seconds are spent."""
    samples: dict[str, list[float]] = {image: [] for image in images}
    order = list(images)
    rng = random.Random(SEED)
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for _ in range(rounds):
        rng.shuffle(order)
        for image in order:
            t0 = clock()
            lookup(image)
            samples[image].append((clock() - t0) / 1000)
        if time.perf_counter() - start > budget:
            break
    return samples


def build_keyring(files: Sequence[Sequence[tuple[str, AuthEntry]]]) -> Keyring:
    keyring = Keyring()
    for n, f in enumerate(files):
        skipped = keyring.add(f, source_name(n))
        if skipped:
            sys.exit(f"FAIL: the keyring skipped entries it should accept: {skipped[:3]}")
    return keyring


def verify(
    size: int,
    images: Sequence[tuple[str, str]],
    keyring: Keyring,
    scan_results: dict[str, list[Cred]],
) -> None:
    lookup = indexed_lookup(keyring)
    for category, image in images:
        got, want = lookup(image), scan_results[image]
        if got != want:
            print(
                f"FAIL at {size} entries: Keyring.lookup({image!r}) [{category}] differs from "
                f"the kubelet scan\n  indexed: {[c[:2] for c in got]}\n"
                f"  scan:    {[c[:2] for c in want]}",
                file=sys.stderr,
            )
            sys.exit(1)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    line = "-+-".join("-" * w for w in widths)
    out = [" | ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, seed {SEED}")

    rows: list[list[str]] = []
    per_category: dict[int, dict[str, list[float]]] = {}
    last: tuple[int, list[list[tuple[str, AuthEntry]]]] | None = None
    for size in args.sizes:
        files = make_entries(size, SEED)
        images = make_images(files, size)
        names = [image for _, image in images]

        t0 = time.perf_counter()
        keyring = build_keyring(files)
        build = time.perf_counter() - t0
        scan = LinearScan()
        for n, f in enumerate(files):
            scan.add(f, source_name(n))

        # The scan's first round gives the reference answers, then the timings.
        scan_results = {image: scan.lookup(image) for image in names}
        verify(size, images, keyring, scan_results)
        matched = sum(1 for image in names if scan_results[image])

        for image in names:  # warm-up
            keyring.lookup(image)
        fast = time_lookups(keyring.lookup, names, INDEXED_MAX_ROUNDS, INDEXED_SECONDS)
        slow = time_lookups(scan.lookup, names, SCAN_ROUNDS.get(size, 1), math.inf)
        fast_all = [s for v in fast.values() for s in v]
        slow_all = [s for v in slow.values() for s in v]
        fast_median = statistics.median(fast_all)
        slow_median = statistics.median(slow_all)
        rows.append(
            [
                f"{size:,}",
                f"{len(scan.index):,}",
                f"{build:.2f}",
                f"{fast_median:.1f}",
                f"{percentile(fast_all, 0.95):,.1f}",
                f"{len(fast_all):,}",
                f"{slow_median:,.0f}",
                f"{len(slow_all)}",
                f"{slow_median / fast_median:,.0f}",
                f"{matched}/{len(names)}",
            ]
        )
        cats: dict[str, list[float]] = {}
        for category, image in images:
            cats.setdefault(category, []).extend(fast[image])
        per_category[size] = cats
        last = (size, files)
        print(f"  measured {size:,} entries", flush=True)

    print()
    print("Keyring.lookup (indexed) vs the kubelet's linear scan, µs per lookup")
    headers = [
        "entries",
        "unique keys",
        "index build s",
        "indexed median µs",
        "indexed p95 µs",
        "indexed n",
        "scan median µs",
        "scan n",
        "speed-up ×",  # noqa: RUF001
        "images with creds",
    ]
    print(table(headers, rows))
    print("(every lookup image returned the same credentials in the same order both ways)")

    print()
    print("Indexed lookup by image category, median µs (p95 µs)")
    categories = list(dict.fromkeys(c for v in per_category.values() for c in v))
    cat_rows = []
    for category in categories:
        row = [category]
        for size in args.sizes:
            v = per_category[size].get(category, [])
            row.append(f"{statistics.median(v):,.1f} ({percentile(v, 0.95):,.1f})" if v else "-")
        cat_rows.append(row)
    print(table(["category", *(f"{s:,} entries" for s in args.sizes)], cat_rows))

    if last is not None:
        size, files = last
        tracemalloc.start()
        keyring = build_keyring(files)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print()
        print(
            f"Memory of the {size:,}-entry keyring (tracemalloc, entries themselves excluded): "
            f"{current / 2**20:.1f} MiB retained, {peak / 2**20:.1f} MiB peak while building"
        )
        del keyring


if __name__ == "__main__":
    main()
