"""Several `pullkeeper serve` replicas on one PostgreSQL store, as real processes that a test
stops and starts again one at a time; who holds the sync lease; and the accounting of the
requests sent to them.

Each replica has its own data directory, webhook listener and host name (a UTS namespace of
its own, as a pod has), and they share one key source (PULLKEEPER_KEYS). Every process a
replica runs is a `Life`: its pid, so its identity (`HOST:PID`, what the sync lease and the
User-Agent of its Kubernetes requests call it), and when it started and stopped.

A replica is taken out of the set that load threads choose from before it is signalled, and
put back once it is ready again, each time with a new epoch; a request whose replica changed
epoch while it was in flight was cut by that stop, any other failure is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from pullkeeper.services.leader import SYNC

from . import Serve, client


@dataclass(frozen=True)
class Timing:
    """The settings that bound what the replicas promise, and the slack a loaded machine adds."""

    lease_seconds: float = 3.0  # sync_lease_seconds (the least allowed)
    poll_seconds: float = 0.25  # sync_poll_seconds
    refresh_seconds: float = 1.0  # admission_refresh_seconds (the default)
    # A 2-core machine running other tests beside these processes may hold one back this long.
    slack: float = 5.0

    def env(self) -> dict[str, str]:
        return {
            "PULLKEEPER_SYNC_LEASE_SECONDS": str(self.lease_seconds),
            "PULLKEEPER_SYNC_POLL_SECONDS": str(self.poll_seconds),
            "PULLKEEPER_ADMISSION_REFRESH_SECONDS": str(self.refresh_seconds),
        }

    @property
    def after_kill(self) -> float:
        """A dead holder's lease runs out, then a follower's poll takes it."""
        return self.lease_seconds + self.poll_seconds + self.slack

    @property
    def after_stop(self) -> float:
        """A stopping holder gives the lease up; a follower takes it at its next poll."""
        return 2 * self.poll_seconds + self.slack

    @property
    def index_delay(self) -> float:
        """Another process's change reaches a webhook's index at its next refresh."""
        return self.refresh_seconds + self.slack


@dataclass
class Life:
    """One process of a replica."""

    host: str
    pid: int
    started: float  # wall-clock seconds, as the API server's audit log and the store keep time
    signalled: float | None = None
    stopped: float | None = None  # when it had exited
    how: str = ""  # SIGKILL, SIGTERM, or "end" (the test's end)
    status: int | None = None  # its exit status

    @property
    def identity(self) -> str:
        return f"{self.host}:{self.pid}"


class Replica:
    def __init__(self, serve: Serve, host: str) -> None:
        self.serve, self.host = serve, host
        self.up = False
        self.epoch = 0
        self.lives: list[Life] = []

    @property
    def life(self) -> Life:
        return self.lives[-1]


class Fleet:
    """The replicas, which of them load may be sent to, and every process they ran."""

    def __init__(self, base: Path, database_url: str, count: int, timing: Timing) -> None:
        self.database_url, self.timing = database_url, timing
        env = {"PULLKEEPER_KEYS": base64.b64encode(os.urandom(32)).decode(), **timing.env()}
        hosts = [f"replica-{i}" for i in range(count)]
        self.replicas = [
            Replica(Serve(base / h, database_url, env, webhook=True, hostname=h), h) for h in hosts
        ]
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start every replica at once (one migrates the new store, the others wait)."""
        for r in self.replicas:
            r.serve.launch()
        for r in self.replicas:
            r.serve.wait_ready(timeout=180)
            self._up(r)

    def _up(self, r: Replica) -> None:
        assert r.serve.proc is not None
        r.lives.append(Life(r.host, r.serve.proc.pid, time.time()))
        with self._lock:
            r.up = True

    def running(self) -> list[tuple[Replica, int]]:
        """The replicas load may be sent to, each with its epoch."""
        with self._lock:
            return [(r, r.epoch) for r in self.replicas if r.up]

    def current(self, r: Replica, epoch: int) -> bool:
        """Whether the process a request was sent to runs still (and was not told to stop)."""
        with self._lock:
            return r.up and r.epoch == epoch

    def stop(self, r: Replica, sig: signal.Signals) -> Life:
        """Take the replica out of the load, then signal it and wait until it has exited."""
        with self._lock:
            r.up = False
            r.epoch += 1
        life = r.life
        life.signalled, life.how = time.time(), sig.name
        r.serve.signal(sig)
        life.status = r.serve.wait(timeout=60)
        life.stopped = time.time()
        return life

    def restart(self, r: Replica) -> float:
        """Start the replica again; the seconds until it was ready."""
        took = r.serve.start(timeout=180)
        self._up(r)
        return took

    def stop_all(self) -> None:
        """Stop every replica that runs (SIGTERM; SIGKILL if it does not exit)."""
        for r in self.replicas:
            with self._lock:
                r.up = False
                r.epoch += 1
            if r.serve.proc is None or r.serve.proc.poll() is not None:
                continue
            signalled = time.time()
            status = r.serve.stop()
            if r.lives:  # not when it never became ready
                r.life.signalled, r.life.how, r.life.status = signalled, "end", status
                r.life.stopped = time.time()

    def life_of(self, identity: str) -> tuple[Replica, Life] | None:
        for r in self.replicas:
            for life in r.lives:
                if life.identity == identity:
                    return r, life
        return None

    def logs(self) -> str:
        return "\n".join(f"==== {r.host} ====\n{r.serve.log()[-6000:]}" for r in self.replicas)

    @contextlib.contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        """An assertion that fails in the block shows what every replica logged."""
        try:
            yield
        except AssertionError as e:
            raise AssertionError(f"{e}\n\nthe replicas' logs:\n{self.logs()}") from e


@dataclass
class Tally:
    """Per kind of request: answers, requests cut by a stop, and failures (any other error)."""

    answered: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, kind: str) -> None:
        with self._lock:
            self.answered[kind] += 1

    def cut_off(self, kind: str) -> None:
        with self._lock:
            self.cut[kind] += 1

    def fail(self, kind: str, text: str) -> None:
        with self._lock:
            self.failures.append(f"{kind}: {text}")


Request = Callable[[httpx.Client], httpx.Response]


class Caller:
    """One load thread's connections, a client per replica process (a new one after a
    restart), and the accounting of what each request got."""

    def __init__(self, fleet: Fleet, tally: Tally, kind: str, rng: random.Random) -> None:
        self.fleet, self.tally, self.kind, self.rng = fleet, tally, kind, rng
        self.webhook = kind == "admission"
        self.cuts = 0  # this thread's requests cut by a stop
        self.last = ""  # the host of the replica that gave the last answer
        self._clients: dict[str, tuple[int, httpx.Client]] = {}

    def send(
        self, request: Request, to: tuple[Replica, int] | None = None
    ) -> httpx.Response | None:
        """The answer of a running replica (one chosen at random unless given); None when the
        request was cut by a stop, failed, or no replica runs."""
        if to is not None and not self.fleet.current(*to):
            return None  # stopped since it was chosen: nothing sent
        running = self.fleet.running()
        if to is None and not running:
            return None
        r, epoch = to or self.rng.choice(running)
        try:
            answer = request(self._client(r, epoch))
        except httpx.TransportError as e:
            self._drop(r)
            if self.fleet.current(r, epoch):
                self.tally.fail(self.kind, f"{r.host}: {e!r}")
            else:
                self._cut()
            return None
        if not self.fleet.current(r, epoch) and answer.status_code >= 500:
            self._cut()  # a stopping server's last words
            return None
        self.tally.answer(self.kind)
        self.last = r.host
        return answer

    def until_answered(self, request: Request, timeout: float = 120.0) -> httpx.Response | None:
        """Send until a running replica answers: a request cut by a stop goes again (every
        request of this harness may be repeated)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.send(request)
            if answer is not None:
                return answer
            time.sleep(0.05)
        self.tally.fail(self.kind, f"no replica answered within {timeout} s")
        return None

    def _cut(self) -> None:
        self.cuts += 1
        self.tally.cut_off(self.kind)

    def _client(self, r: Replica, epoch: int) -> httpx.Client:
        held = self._clients.get(r.host)
        if held is not None and held[0] == epoch:
            return held[1]
        self._drop(r)
        made = r.serve.webhook_client() if self.webhook else client(r.serve.url)
        self._clients[r.host] = (epoch, made)
        return made

    def _drop(self, r: Replica) -> None:
        held = self._clients.pop(r.host, None)
        if held is not None:
            held[1].close()

    def close(self) -> None:
        for _, c in self._clients.values():
            c.close()
        self._clients.clear()


@dataclass(frozen=True)
class Holding:
    """A holder of the sync lease, as the store recorded it."""

    identity: str  # HOST:PID (the holder's name without its instance)
    acquired: float  # wall-clock seconds
    seen: float  # when the watch first saw it


class LeaseWatch:
    """Every holder of the sync lease, read from the store every 50 ms."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.seen: list[Holding] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-watch", daemon=True)

    def start(self) -> LeaseWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        query = "SELECT holder, acquired_at FROM leases WHERE name = %s"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(query, (SYNC,)).fetchone()
                if row is not None:
                    holding = Holding(row[0].rsplit(":", 1)[0], row[1].timestamp(), time.time())
                    last = self.seen[-1] if self.seen else None
                    if last is None or (last.identity, last.acquired) != (
                        holding.identity,
                        holding.acquired,
                    ):
                        self.seen.append(holding)
                self._stop.wait(0.05)

    def current(self) -> Holding | None:
        return self.seen[-1] if self.seen else None

    def next_after(self, identity: str, since: float, timeout: float) -> Holding | None:
        """The first holder other than identity that took the lease after `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for holding in list(self.seen):
                if holding.identity != identity and holding.acquired >= since:
                    return holding
            time.sleep(0.02)
        return None
