"""Crash and shutdown safety of `pullkeeper serve` as a real process.

A crash: several threads create, edit and delete credentials while the server
is SIGKILLed in the middle of the batch. Every client keeps a ledger of what
it sent and what was acknowledged. After a restart on the same store, every
credential that exists must be whole (metadata, and a secret that decrypts to
a password actually sent for it, no older than the last acknowledged one),
every acknowledged create must still exist unless a delete of it was sent,
every acknowledged delete must have stuck, and the audit trail must hold
exactly one create event per credential, whether it still exists or not.
Run on SQLite, then on a real PostgreSQL 15 (tests/pg.py).

A shutdown: SIGTERM while requests are in flight (bodies still arriving, and
argon2 logins) must let them finish with 2xx, and the server must then exit
by itself with status 0.
"""

from __future__ import annotations

import base64
import json
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import Serve, client, ok

THREADS = 6
# The server is killed once this many creates were acknowledged, with every thread still busy.
KILL_AFTER_CREATES = 60
CLUSTER = "crash"


@dataclass
class Ledger:
    """What one client thread sent and what the server acknowledged; keyed by unique name."""

    passwords: dict[str, list[str]] = field(default_factory=dict)  # in the order sent
    acked_password: dict[str, int] = field(default_factory=dict)  # index of the last acked
    created: dict[str, str] = field(default_factory=dict)  # name -> id, 201 received
    delete_sent: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)  # 204 received
    errors: list[str] = field(default_factory=list)  # any other answer


def _scope_fields(rng: random.Random) -> dict[str, Any]:
    scope = rng.choice(["namespace", "namespace", "project", "cluster"])
    if scope == "namespace":
        return {"scope": scope, "namespace": f"ns-{rng.randrange(4)}"}
    if scope == "project":
        return {"scope": scope, "project": "proj"}
    return {"scope": scope}


def _worker(base_url: str, n: int, ledger: Ledger, stop: threading.Event, acked: list[int]) -> None:
    rng = random.Random(n)  # noqa: S311 - test data, not secrets
    mine: list[tuple[str, str]] = []  # (name, id) acknowledged and not deleted
    counter = 0
    with client(base_url) as c:
        while not stop.is_set():
            roll = rng.random()
            try:
                if roll < 0.6 or not mine:
                    counter += 1
                    name = f"w{n}-cred-{counter}"
                    password = f"pw-{name}-{rng.getrandbits(32):08x}:&<>é"
                    ledger.passwords[name] = [password]
                    body = {
                        "name": name,
                        "cluster": CLUSTER,
                        "provider": "custom",
                        "server": f"reg-{rng.randrange(3)}.example.com:5000",
                        "username": f"robot-{n}",
                        "password": password,
                        "description": "x" * rng.randrange(0, 2000),
                        **_scope_fields(rng),
                    }
                    r = c.post("/credentials", json=body)
                    if r.status_code == 201:
                        ledger.created[name] = r.json()["id"]
                        ledger.acked_password[name] = 0
                        mine.append((name, r.json()["id"]))
                        acked[0] += 1
                    else:
                        ledger.errors.append(f"create {name}: {r.status_code} {r.text}")
                elif roll < 0.85:
                    name, cred_id = rng.choice(mine)
                    password = f"pw-{name}-edit-{rng.getrandbits(32):08x}"
                    ledger.passwords[name].append(password)
                    sent_index = len(ledger.passwords[name]) - 1
                    r = c.patch(
                        f"/credentials/{cred_id}",
                        json={"password": password, "description": f"edit {sent_index}"},
                    )
                    if r.status_code == 200:
                        ledger.acked_password[name] = sent_index
                    else:
                        ledger.errors.append(f"edit {name}: {r.status_code} {r.text}")
                else:
                    name, cred_id = mine.pop(rng.randrange(len(mine)))
                    ledger.delete_sent.add(name)
                    r = c.delete(f"/credentials/{cred_id}")
                    if r.status_code == 204:
                        ledger.deleted.add(name)
                    else:
                        ledger.errors.append(f"delete {name}: {r.status_code} {r.text}")
            except httpx.TransportError:
                return  # the server is gone


def _seed(c: httpx.Client) -> None:
    ok(c.post("/clusters", json={"name": CLUSTER}), 201)
    ok(c.post("/projects", json={"name": "proj", "cluster": CLUSTER}), 201)
    for i in range(4):
        ok(c.put(f"/clusters/{CLUSTER}/namespaces/ns-{i}", json={"project": "proj"}), 200)


def _all(c: httpx.Client, path: str, params: dict[str, Any], page: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        got = ok(c.get(path, params={**params, "limit": page, "offset": len(items)}), 200)
        items += got["items"]
        if len(items) >= got["total"] or not got["items"]:
            return items


def _password_in(payload: bytes, server: str, username: str) -> str:
    config = json.loads(payload)
    assert set(config) == {"auths"}, config
    assert list(config["auths"]) == [server], config
    entry = config["auths"][server]
    user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
    assert user == entry["username"] == username, entry
    assert password == entry["password"], "auth and password disagree"
    return password


def _crash_and_restart(data: Path, database_url: str | None = None) -> None:
    serve = Serve(data, database_url)
    serve.start()
    try:
        with client(serve.url) as c:
            _seed(c)
        ledgers = [Ledger() for _ in range(THREADS)]
        stop = threading.Event()
        acked = [0]  # creates acknowledged, over all threads (a rough count is enough)
        threads = [
            threading.Thread(target=_worker, args=(serve.url, n, ledgers[n], stop, acked))
            for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while acked[0] < KILL_AFTER_CREATES and time.monotonic() < deadline:
            time.sleep(0.005)
        assert all(t.is_alive() for t in threads), "a worker stopped before the kill"
        serve.kill()  # SIGKILL, with requests in flight
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert acked[0] >= KILL_AFTER_CREATES, f"only {acked[0]} creates before the deadline"

        errors = [e for ledger in ledgers for e in ledger.errors]
        assert not errors, errors
        serve.start()  # same data directory, same store: it must come up, then say ready
        readyz = httpx.get(serve.url + "/readyz", timeout=5)
        assert readyz.status_code == 200 and readyz.json() == {"status": "ready"}, readyz.text

        with client(serve.url) as c:
            _check_after_restart(c, ledgers)
    finally:
        serve.stop()
    log = serve.log()
    assert "unexpected error" not in log and "Traceback" not in log, log


def _check_after_restart(c: httpx.Client, ledgers: list[Ledger]) -> None:
    sent: dict[str, list[str]] = {}
    acked_password: dict[str, int] = {}
    created: dict[str, str] = {}
    delete_sent: set[str] = set()
    deleted: set[str] = set()
    for ledger in ledgers:
        sent |= ledger.passwords
        acked_password |= ledger.acked_password
        created |= ledger.created
        delete_sent |= ledger.delete_sent
        deleted |= ledger.deleted

    existing = _all(c, "/credentials", {"cluster": CLUSTER}, 500)
    by_name = {cred["name"]: cred for cred in existing}
    assert len(by_name) == len(existing), "two credentials share a name"

    # Every credential that exists is whole, and its secret is one that was sent for it.
    for cred in existing:
        name = cred["name"]
        assert name in sent, f"a credential nobody created: {cred}"
        for key in ("id", "server", "username", "provider", "scope", "created_at", "updated_at"):
            assert cred[key], f"{name}: {key} is empty: {cred}"
        assert cred["cluster"] == CLUSTER, cred
        assert (cred["namespace"] is not None) == (cred["scope"] == "namespace"), cred
        assert (cred["project"] == "proj") == (cred["scope"] == "project"), cred
        if name in created:
            assert cred["id"] == created[name], cred
        payload = c.get(f"/credentials/{cred['id']}/dockerconfigjson")
        assert payload.status_code == 200, payload.text
        password = _password_in(payload.content, cred["server"], cred["username"])
        assert password in sent[name], f"{name}: a password never sent for it"
        # Not older than the last edit the server acknowledged.
        assert sent[name].index(password) >= acked_password.get(name, 0), (
            f"{name}: holds password #{sent[name].index(password)} of {sent[name]}, "
            f"but #{acked_password.get(name)} was acknowledged"
        )

    # Every acknowledged create survived, unless a delete of it was sent; deletes stuck.
    lost = [n for n in created if n not in by_name and n not in delete_sent]
    assert not lost, f"acknowledged creates lost in the crash: {lost}"
    resurrected = [n for n in deleted if n in by_name]
    assert not resurrected, f"acknowledged deletes undone by the crash: {resurrected}"

    # The audit trail: exactly one create event per credential, and none for a credential
    # that neither exists nor has its delete recorded (a half-written create).
    creates = _all(c, "/audit", {"action": "credential.create"}, 1000)
    deletes = _all(c, "/audit", {"action": "credential.delete"}, 1000)
    create_count: dict[str, int] = {}
    for event in creates:
        create_count[event["object_id"]] = create_count.get(event["object_id"], 0) + 1
    deleted_ids = [event["object_id"] for event in deletes]
    assert len(deleted_ids) == len(set(deleted_ids)), "a credential deleted twice"
    for cred in existing:
        assert create_count.get(cred["id"]) == 1, (
            f"{cred['name']}: {create_count.get(cred['id'], 0)} create events"
        )
        assert cred["id"] not in deleted_ids, f"{cred['name']} exists but has a delete event"
    live_ids = {cred["id"] for cred in existing}
    for object_id, count in create_count.items():
        assert count == 1, f"{object_id}: {count} create events"
        assert object_id in live_ids or object_id in deleted_ids, (
            f"create event for {object_id}, which neither exists nor was deleted"
        )
    for object_id in deleted_ids:
        assert object_id in create_count, f"delete event for {object_id} without a create"
    # And the server still takes writes after the crash.
    body = {
        "name": "after-restart",
        "cluster": CLUSTER,
        "scope": "cluster",
        "server": "after.example.com",
        "username": "u",
        "password": "p",
    }
    ok(c.post("/credentials", json=body), 201)
    print(
        f"\n{len(sent)} creates sent, {len(created)} acknowledged, {len(deleted)} deletes "
        f"acknowledged; {len(existing)} exist after the restart"
    )


def test_sigkill_mid_batch_then_restart_sqlite(tmp_path: Path) -> None:
    _crash_and_restart(tmp_path / "data")


def test_sigkill_mid_batch_then_restart_postgresql(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    _crash_and_restart(tmp_path / "data", postgres("restart"))


# --------------------------------------------------------------------------- SIGTERM

TRICKLE_SECONDS = 1.5


def _slow(
    base_url: str,
    key: str,
    path: str,
    body: dict[str, Any],
    started: threading.Barrier,
    out: dict[str, Any],
) -> None:
    """POST a JSON body a few bytes at a time, so the request is in flight for a while."""
    raw = json.dumps(body).encode()
    pieces = [raw[i : i + 8] for i in range(0, len(raw), 8)]

    def trickle() -> Iterator[bytes]:
        yield pieces[0]
        started.wait(timeout=10)
        for piece in pieces[1:]:
            time.sleep(TRICKLE_SECONDS / len(pieces))
            yield piece

    try:
        with client(base_url) as c:
            r = c.post(path, content=trickle(), headers={"content-type": "application/json"})
        out[key] = (r.status_code, r.text[:300])
    except httpx.HTTPError as e:
        out[key] = (0, repr(e))


def _slow_requests() -> dict[str, tuple[str, dict[str, Any]]]:
    slow: dict[str, tuple[str, dict[str, Any]]] = {}
    for n in range(4):
        slow[f"slow-{n}"] = (
            "/credentials",
            {
                "name": f"slow-{n}",
                "cluster": CLUSTER,
                "scope": "cluster",
                "server": f"slow-{n}.example.com",
                "username": "u",
                "password": f"slow-password-{n}",
            },
        )
    for n in range(2):
        # A login ends in an argon2 verification, the slowest thing the server does.
        login = {"username": "slowpoke", "password": "slowpoke-password"}
        slow[f"login-{n}"] = ("/login", login)
    return slow


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "data")
    serve.start()
    try:
        with client(serve.url) as c:
            _seed(c)
            user = {"username": "slowpoke", "password": "slowpoke-password"}
            ok(c.post("/users", json=user), 201)
        out: dict[str, Any] = {}
        slow = _slow_requests()
        started = threading.Barrier(len(slow) + 1)
        threads = [
            threading.Thread(target=_slow, args=(serve.url, key, path, body, started, out))
            for key, (path, body) in slow.items()
        ]
        for t in threads:
            t.start()
        started.wait(timeout=10)  # every slow request has sent its headers and first bytes
        time.sleep(0.1)
        t_term = time.monotonic()
        serve.signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=40)
        status = serve.wait(timeout=40)
        took = time.monotonic() - t_term
    finally:
        serve.kill()
    log = serve.log()
    print(f"\nin flight at SIGTERM: {out}\nexit status {status} after {took:.2f}s")
    assert len(out) == len(slow), out
    failed = {k: v for k, v in out.items() if not 200 <= v[0] < 300}
    assert not failed, f"in-flight requests did not complete with 2xx: {failed}\n{log}"
    assert "Traceback" not in log, log
    # After the drain the store holds every slow create.
    serve.start()
    try:
        with client(serve.url) as c:
            names = {x["name"] for x in _all(c, "/credentials", {"cluster": CLUSTER}, 500)}
        assert {k for k in slow if k.startswith("slow-")} <= names, names
    finally:
        serve.stop()
    # It stopped by itself once drained; its exit status is test_sigterm_exit_status_is_0's.
    assert status in (0, -signal.SIGTERM), status


def test_sigterm_exit_status_is_0(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "data")
    serve.start()
    try:
        with client(serve.url) as c:
            ok(c.get("/me"), 200)
        serve.signal(signal.SIGTERM)
        status = serve.wait(timeout=40)
    finally:
        serve.kill()
    assert status == 0, (
        f"pullkeeper serve exited with status {status} after SIGTERM (negative: killed by "
        f"that signal), not 0\n{serve.log()}"
    )
