"""A real PostgreSQL server for tests and benchmarks, started as a plain process.

initdb refuses to run as root, so as root the cluster is created and run as
the `postgres` user. The server listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> str | None:
    """None when PostgreSQL can run here, else why not."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({BIN}/initdb missing)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing, so initdb cannot run as postgres"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL; yields a postgresql:// URL to database `pullkeeper`."""
    reason = available()
    if reason:
        raise RuntimeError(reason)
    base = Path(tempfile.mkdtemp(prefix="pk-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(base / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run(
                [
                    str(BIN / "psql"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "-c",
                    "CREATE DATABASE pullkeeper",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections: {r.stderr}")
            time.sleep(0.2)
        yield f"postgresql://postgres@127.0.0.1:{port}/pullkeeper"
    finally:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def dump(url: str) -> bytes:
    """Every byte of every table in the database, as pg_dump writes them."""
    port = url.rsplit(":", maxsplit=1)[-1].split("/", maxsplit=1)[0]
    return subprocess.run(
        [
            str(BIN / "pg_dump"),
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "postgres",
            "--data-only",
            "pullkeeper",
        ],
        check=True,
        capture_output=True,
    ).stdout
