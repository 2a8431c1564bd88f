"""Operational tests of `pullkeeper serve` as a real process: fuzzing, crashes, shutdown.

The helpers here start the installed `pullkeeper serve` executable on a free
loopback port with a known admin token (and, when asked, its webhook's TLS
listener on another), wait for /readyz (and the TLS handshake), and keep its log
in a file so a failing test can show what the server said. A server given a host
name runs in a UTS namespace of its own under that name (as root), as a replica in a
pod of its own would: another replica then sees it as a process of another host.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.tools import pullkeeper_executable

ADMIN_TOKEN = "pk_x0123456789abcdef0123456789abcdef"  # a throwaway test token
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Serve:
    """One `pullkeeper serve` process; start() may be called again after it stopped."""

    def __init__(
        self,
        data: Path,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        *,
        webhook: bool = False,
        extra: Sequence[str] = (),
        hostname: str | None = None,
    ) -> None:
        self.data = data
        self.database_url = database_url
        self.env = dict(env or {})  # more PULLKEEPER_* settings
        self.port = free_port()
        self.webhook_port = free_port() if webhook else 0
        self.extra = list(extra)  # more `serve` flags
        self.hostname = hostname
        self.log_path = data.parent / f"{name or data.name}-serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}"

    @property
    def webhook_ca(self) -> Path:
        """The CA of the webhook's generated serving certificate."""
        return self.data / "webhook" / "ca.crt"

    def webhook_client(self, cert: tuple[Path, Path] | None = None) -> httpx.Client:
        """A client of the webhook listener that trusts its CA; with (cert, key), presenting
        that client certificate."""
        context = ssl.create_default_context(cafile=str(self.webhook_ca))
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        return httpx.Client(base_url=self.webhook_url, verify=context, timeout=30)

    def _webhook_ready(self) -> bool:
        if not self.webhook_port:
            return True
        try:
            with socket.create_connection(("127.0.0.1", self.webhook_port), timeout=1):
                return True
        except OSError:
            return False

    def command(self, *words: str) -> tuple[list[str], dict[str, str]]:
        """The arguments and environment of `pullkeeper WORDS...` on this server's settings."""
        args = [pullkeeper_executable(), *(words or ("serve",)), "--data", str(self.data)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        if not words:  # serve's own flags
            args += ["--port", str(self.port)]
            if self.webhook_port:
                args += ["--webhook-port", str(self.webhook_port)]
            args += self.extra
        if self.hostname:
            # unshare and sh exec in turn: the process started is pullkeeper's own.
            rename = 'hostname "$0" && exec "$@"'
            args = ["unshare", "--uts", "sh", "-c", rename, self.hostname, *args]
        env = dict(os.environ, PULLKEEPER_ADMIN_TOKEN=ADMIN_TOKEN, PULLKEEPER_LOG_LEVEL="warning")
        env.update(self.env)
        return args, env

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until /readyz answers 200; returns the seconds that took. (The
        timeout only stops the wait: on a busy machine a start takes tens of seconds.)"""
        t0 = time.monotonic()
        self.launch()
        return self.wait_ready(timeout, t0)

    def launch(self) -> None:
        """Start the process, without waiting for it."""
        args, env = self.command()
        with self.log_path.open("ab") as log:
            log.write(f"\n---- start: {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )

    def wait_ready(self, timeout: float = 60.0, t0: float | None = None) -> float:
        """Wait until the launched process is ready; the seconds since t0 (default: now)."""
        assert self.proc is not None
        t0 = time.monotonic() if t0 is None else t0
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pullkeeper serve exited {self.proc.returncode} at start:\n{self.log()}"
                )
            try:
                ready = httpx.get(self.url + "/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and self._webhook_ready():
                return time.monotonic() - t0
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"pullkeeper serve was not ready within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit within 30 s; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def client(base_url: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url + API, headers=AUTH, timeout=30, **kwargs)


def ok(response: httpx.Response, *expected: int) -> Any:
    """The JSON of a response with one of the expected statuses (default: any 2xx)."""
    good = response.status_code in expected if expected else response.is_success
    assert good, (
        f"{response.request.method} {response.request.url} -> {response.status_code}: "
        f"{response.text[:2000]}"
    )
    return response.json() if response.content else None


def seed_basics(c: httpx.Client, suffix: str = "") -> dict[str, Any]:
    """A cluster, a project, a namespace in it, and one credential per scope."""
    cluster = ok(c.post("/clusters", json={"name": f"c{suffix}"}), 201)
    project = ok(c.post("/projects", json={"name": f"p{suffix}", "cluster": cluster["name"]}), 201)
    ns = ok(
        c.put(
            f"/clusters/{cluster['name']}/namespaces/ns{suffix}",
            json={"project": project["name"]},
        ),
        200,
    )
    creds = []
    for scope, extra in (
        ("namespace", {"namespace": ns["name"]}),
        ("project", {"project": project["name"]}),
        ("cluster", {}),
    ):
        body = {
            "name": f"{scope}-cred{suffix}",
            "cluster": cluster["name"],
            "scope": scope,
            "provider": "custom",
            "server": f"{scope}.registry.example.com",
            "username": "robot",
            "password": f"pw-{scope}{suffix}",
            **extra,
        }
        creds.append(ok(c.post("/credentials", json=body), 201))
    return {"cluster": cluster, "project": project, "namespace": ns, "credentials": creds}
