"""Cold start of the one-shot commands, each run as a new process, against the bare interpreter.

The commands: `image parse nginx`, `creds resolve IMAGE --config F`, `secret create
docker-registry` (the password on stdin, YAML out as kubectl prints it) and `check IMAGE
--config F --ca-file CA` against a real registry: docker-registry (distribution 2.8) with
token auth over TLS and its token server, the test fixtures' own (tests/registry), as
benchmarks/registry_check.py starts them. Every command runs with an isolated HOME.

The pullkeeper executable next to this interpreter runs them; `python -c pass` is the
floor. The commands and the floor run in turn, round after round (interleaved, so a change
in the machine's load touches all alike): 2 warm-up rounds, then --runs timed. For each:
the median wall-clock time (around subprocess.run), the median CPU time of the child (user
+ system: less disturbed by other work on a shared machine) and the ratio of the median
wall-clock time to the floor's. Then each command runs 5 times under `python -X importtime`
and the --top imports with the largest cumulative time (median over the 5) are listed.

Run: .venv/bin/python benchmarks/cli_cold_start.py [--runs 20] [--top 10]
(from a worktree, with PYTHONPATH=src to measure its sources)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.registry import servers  # noqa: E402

WARMUPS = 2
IMPORTTIME_RUNS = 5


@dataclass
class Command:
    label: str
    argv: list[str]
    stdin: bytes | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def executable() -> Path:
    name = "pullkeeper.exe" if os.name == "nt" else "pullkeeper"
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        sys.exit(f"FAIL: no {name} next to {sys.executable}; install the project in this venv")
    return exe


def run_once(command: Command, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run of command, as a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        command.argv, input=command.stdin, env=env, capture_output=True, check=False
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"FAIL: {command.label} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def import_times(command: Command, env: dict[str, str]) -> dict[str, list[tuple[int, int]]]:
    """module -> [(self µs, cumulative µs)] over IMPORTTIME_RUNS runs."""
    found: dict[str, list[tuple[int, int]]] = {}
    for _ in range(IMPORTTIME_RUNS):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", *command.argv],
            input=command.stdin,
            env=env,
            capture_output=True,
            check=True,
        )
        for line in done.stderr.decode().splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cumulative, name = line.removeprefix("import time:").split("|", 2)
            found.setdefault(name.strip(), []).append((int(self_us), int(cumulative)))
    return found


def print_table(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    widths = [max(len(c[i]) for c in [headers, *cells]) for i in range(len(headers))]
    for c in [headers, tuple("-" * w for w in widths), *cells]:
        print(
            " | ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(c, widths, strict=True))
            )
        )


def commands(exe: Path, registry: servers.TokenRegistry, base: Path) -> list[Command]:
    alice = registry.credentials
    image = registry.image("team-a/app:v1").reference
    config = base / "config.json"
    auth = base64.b64encode(f"{alice.username}:{alice.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    assert registry.ca_file is not None
    pk = str(exe)
    return [
        Command("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        Command("pullkeeper image parse nginx", [pk, "image", "parse", "nginx"]),
        Command(
            "pullkeeper creds resolve IMAGE --config F",
            [pk, "creds", "resolve", image, "--config", str(config)],
        ),
        Command(
            "pullkeeper secret create docker-registry",
            [
                *(pk, "secret", "create", "docker-registry", "regcred"),
                *("--docker-server", registry.host, "--docker-username", alice.username),
                "--password-stdin",
            ],
            stdin=alice.password.encode(),
        ),
        Command(
            "pullkeeper check IMAGE (TLS, token auth)",
            [
                *(pk, "check", image, "--config", str(config)),
                *("--ca-file", str(registry.ca_file), "-o", "json"),
            ],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("docker-registry"):
        sys.exit("FAIL: docker-registry is not installed (scripts/test installs it)")
    exe = executable()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"command: {sys.executable} {' '.join(sys.argv)}"
    )
    base = Path(tempfile.mkdtemp(prefix="pk-cli-bench-"))
    try:
        layouts = servers.build_layouts(base / "layouts")
        with servers.token_registry(base / "registry", layouts) as registry:
            env = dict(registry.env)
            cmds = commands(exe, registry, base)
            for i in range(WARMUPS + args.runs):
                for command in cmds:
                    wall, cpu = run_once(command, env)
                    if i >= WARMUPS:
                        command.wall.append(wall)
                        command.cpu.append(cpu)
            floor = statistics.median(cmds[0].wall)
            print()
            print(
                f"Start to exit, a new process each run: medians of {args.runs} interleaved "
                f"rounds after {WARMUPS} warm-ups"
            )
            print_table(
                ("command", "wall ms", "CPU ms", "wall / floor"),
                [
                    (
                        c.label,
                        f"{statistics.median(c.wall) * 1000:.1f}",
                        f"{statistics.median(c.cpu) * 1000:.1f}",
                        f"{statistics.median(c.wall) / floor:.2f}",
                    )
                    for c in cmds
                ],
            )
            for command in cmds[1:]:
                found = import_times(command, env)
                ranked = sorted(
                    (
                        (
                            statistics.median(c for _, c in v),
                            statistics.median(s for s, _ in v),
                            name,
                        )
                        for name, v in found.items()
                    ),
                    reverse=True,
                )
                total = sum(statistics.median(s for s, _ in v) for v in found.values())
                print()
                print(
                    f"{command.label}: python -X importtime, top {args.top} by cumulative "
                    f"time (median of {IMPORTTIME_RUNS} runs); all {len(found)} imports: "
                    f"{total / 1000:.1f} ms self time in total"
                )
                print_table(
                    ("module", "cumulative ms", "self ms"),
                    [
                        (name, f"{cum / 1000:.1f}", f"{own / 1000:.1f}")
                        for cum, own, name in ranked[: args.top]
                    ],
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
