"""Cold start of `pullkeeper image parse nginx`, as a fresh process each time.

The pullkeeper executable next to this interpreter is run 2 times to warm the
OS caches, then 20 times timed (wall clock around subprocess.run). The bare
interpreter (`python -c pass`) is timed the same way, as the floor. Then the
command runs 5 times under `python -X importtime` and the 10 imports with the
largest cumulative time (median over the 5 runs) are listed, so a slow import
is visible.

Run: .venv/bin/python benchmarks/cli_cold_start.py
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

WARMUPS = 2
RUNS = 20
IMPORTTIME_RUNS = 5
TOP = 10
ARGS = ("image", "parse", "nginx")


def executable() -> Path:
    name = "pullkeeper.exe" if os.name == "nt" else "pullkeeper"
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        sys.exit(f"FAIL: no {name} next to {sys.executable}; install the project in this venv")
    return exe


def timed(cmd: Sequence[str]) -> list[float]:
    times = []
    for i in range(WARMUPS + RUNS):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"FAIL: {' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()}")
        if i >= WARMUPS:
            times.append(elapsed)
    return times


def import_times(exe: Path) -> dict[str, list[tuple[int, int]]]:
    """module -> [(self µs, cumulative µs)] over IMPORTTIME_RUNS runs."""
    found: dict[str, list[tuple[int, int]]] = {}
    for _ in range(IMPORTTIME_RUNS):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", str(exe), *ARGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cumulative, name = line.removeprefix("import time:").split("|", 2)
            found.setdefault(name.strip(), []).append((int(self_us), int(cumulative)))
    return found


def main() -> None:
    exe = executable()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"command: {exe} {' '.join(ARGS)}")

    rows = []
    for label, cmd in (
        ("pullkeeper image parse nginx", [str(exe), *ARGS]),
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
    ):
        t = timed(cmd)
        rows.append((label, statistics.median(t), min(t), max(t)))

    print()
    print(f"Wall-clock start-to-exit, seconds ({RUNS} runs after {WARMUPS} warm-ups)")
    headers = ("command", "median s", "min s", "max s")
    cells = [(r[0], f"{r[1]:.3f}", f"{r[2]:.3f}", f"{r[3]:.3f}") for r in rows]
    widths = [max(len(c[i]) for c in [headers, *cells]) for i in range(len(headers))]
    for c in [headers, tuple("-" * w for w in widths), *cells]:
        print(
            " | ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(c, widths, strict=True))
            )
        )

    found = import_times(exe)
    ranked = sorted(
        (
            (statistics.median(c for _, c in v), statistics.median(s for s, _ in v), name)
            for name, v in found.items()
        ),
        reverse=True,
    )
    print()
    print(f"python -X importtime, top {TOP} by cumulative time (median of {IMPORTTIME_RUNS} runs)")
    headers = ("module", "cumulative ms", "self ms")
    cells = [(name, f"{cum / 1000:.1f}", f"{own / 1000:.1f}") for cum, own, name in ranked[:TOP]]
    widths = [max(len(c[i]) for c in [headers, *cells]) for i in range(len(headers))]
    for c in [headers, tuple("-" * w for w in widths), *cells]:
        print(
            " | ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    total = sum(statistics.median(s for s, _ in v) for v in found.values())
    print(f"(all {len(found)} imports: {total / 1000:.1f} ms self time in total)")


if __name__ == "__main__":
    main()
