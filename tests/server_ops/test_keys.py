"""Encryption keys with `pullkeeper serve` as real processes on loopback, on SQLite and on a
real PostgreSQL 15 (tests/pg.py).

The attacks replayed: a server whose key file was swapped or deleted must not start (exit 2,
one line naming the key, /readyz never ready) instead of answering 500 on every read and
writing new secrets under a new key; replicas with data directories of their own on one
PostgreSQL must read each other's records through a shared key source, and one without it
must refuse to start instead of making a key of its own; a rotation, by `pullkeeper keys
rotate` or by an admin through the API (a member gets 403), must reach every running
process: their next secrets are encrypted with the new key.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from . import Serve, client, ok

PASSWORD = "pw-keys-{}-R7t2q"  # each credential's password, by its name


def _new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def refused(serve: Serve, timeout: float = 30.0) -> str:
    """Run `pullkeeper serve` expecting a refusal: never ready, exit 2, one line on stderr."""
    args, env = serve.command()
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    ready = False
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline and not ready:
            with contextlib.suppress(httpx.TransportError):
                ready = httpx.get(serve.url + "/readyz", timeout=1).status_code == 200
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
    text = err.decode(errors="replace")
    assert not ready, f"pullkeeper serve reported ready; its stderr:\n{text}"
    assert proc.returncode == 2, f"exit status {proc.returncode}, not 2; stderr:\n{text}"
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    return lines[0]


def cred(c: httpx.Client, name: str) -> dict[str, Any]:
    body = {
        "name": name,
        "cluster": "c1",
        "scope": "cluster",
        "provider": "custom",
        "server": f"{name}.example.com",
        "username": "robot",
        "password": PASSWORD.format(name),
    }
    made: dict[str, Any] = ok(c.post("/credentials", json=body), 201)
    return made


def password_of(c: httpx.Client, made: dict[str, Any]) -> str:
    r = c.get(f"/credentials/{made['id']}/dockerconfigjson")
    assert r.status_code == 200, f"{r.status_code}: {r.text}"
    password: str = json.loads(r.content)["auths"][made["server"]]["password"]
    return password


def key_ids(data: Path, database_url: str | None) -> dict[str, str]:
    """Each credential's key id, read from the store itself: name -> secret_key_id."""
    query = "SELECT name, secret_key_id FROM credentials"
    if database_url:
        with psycopg.connect(database_url) as conn:
            return {name: key for name, key in conn.execute(query)}
    with contextlib.closing(sqlite3.connect(data / "pullkeeper.db")) as conn:
        return {name: key for name, key in conn.execute(query)}


def _seeded(serve: Serve) -> dict[str, Any]:
    serve.start()
    try:
        with client(serve.url) as c:
            ok(c.post("/clusters", json={"name": "c1"}), 201)
            return cred(c, "shop")
    finally:
        serve.stop()


# --------------------------------------------------------------------------- lost and swapped


def test_a_swapped_key_file_is_refused_at_start(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "data")
    made = _seeded(serve)
    [key_file] = (tmp_path / "data" / "keys").glob("*.key")
    original = key_file.read_bytes()
    key_file.write_bytes(os.urandom(32))

    line = refused(serve)
    assert key_file.stem in line and str(key_file) in line, line

    # With the original key back, the same store starts and reads its secret.
    key_file.write_bytes(original)
    serve.start()
    try:
        with client(serve.url) as c:
            assert password_of(c, made) == PASSWORD.format("shop")
    finally:
        serve.stop()


def test_a_deleted_key_is_refused_at_start_and_no_new_key_is_made(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "data")
    _seeded(serve)
    keys = tmp_path / "data" / "keys"
    [key_file] = keys.glob("*.key")
    saved = tmp_path / "saved-keys"
    shutil.move(keys, saved)  # the whole key directory is gone, as with a lost volume

    line = refused(serve)
    assert key_file.stem in line and str(keys) in line and "missing" in line, line
    assert not list(keys.glob("*.key")), "a new key was made for a store that has secrets"


# --------------------------------------------------------------------------- replicas


def test_replicas_on_one_postgresql_read_each_others_records_through_a_shared_key_source(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    url = postgres("replicas")
    shared = {"PULLKEEPER_KEYS": _new_key()}
    a = Serve(tmp_path / "a", url, shared)
    b = Serve(tmp_path / "b", url, shared)
    a.start()
    b.start()
    try:
        with client(a.url) as ca, client(b.url) as cb:
            ok(ca.post("/clusters", json={"name": "c1"}), 201)
            from_a, from_b = cred(ca, "from-a"), cred(cb, "from-b")
            assert password_of(cb, from_a) == PASSWORD.format("from-a")
            assert password_of(ca, from_b) == PASSWORD.format("from-b")
        key_id = key_ids(tmp_path, url)["from-a"]
        assert key_ids(tmp_path, url) == {"from-a": key_id, "from-b": key_id}
        # The keys came from the environment: neither data directory holds one.
        assert not list(tmp_path.glob("*/keys/*.key"))

        # A replica with a data directory of its own and no shared keys does not start.
        lone = Serve(tmp_path / "lone", url)
        line = refused(lone)
        assert key_id in line and "PULLKEEPER_KEYS" in line, line
        assert not list((tmp_path / "lone").glob("keys/*.key")), "the lone replica made a key"
    finally:
        a.stop()
        b.stop()


# --------------------------------------------------------------------------- rotation


def _created_under(
    c: httpx.Client, who: str, key_id: str, keys: Callable[[], dict[str, str]]
) -> dict[str, Any]:
    """Create credentials through one server until one is encrypted with key_id (5 s)."""
    deadline = time.monotonic() + 5
    n = 0
    while True:
        n += 1
        made = cred(c, f"after-{who}-{n}")
        got = keys()[made["name"]]
        if got == key_id:
            return made
        assert time.monotonic() < deadline, (
            f"server {who} still encrypts new secrets with key {got}, not the new key {key_id}"
        )
        time.sleep(0.2)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_rotation_by_the_cli_reaches_every_running_server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        # Two processes on one data directory: one SQLite store, one key directory.
        url = None
        data = tmp_path / "data"
        a, b = Serve(data, name="a"), Serve(data, name="b")
        rotator = Serve(data, name="rotate")
    else:
        # Two replicas with data directories of their own, one key directory between them.
        url = request.getfixturevalue("postgres")("rotation")
        shared = {"PULLKEEPER_KEYS_DIR": str(tmp_path / "shared-keys")}
        a, b = Serve(tmp_path / "a", url, shared), Serve(tmp_path / "b", url, shared)
        rotator = Serve(tmp_path / "rotator", url, shared)

    def keys() -> dict[str, str]:
        return key_ids(tmp_path / "data", url)

    a.start()
    b.start()
    try:
        with client(a.url) as ca, client(b.url) as cb:
            ok(ca.post("/clusters", json={"name": "c1"}), 201)
            before = cred(cb, "before")
            old_key = keys()["before"]

            args, env = rotator.command("keys", "rotate")
            done = subprocess.run(
                args, env=env, capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr
            new_key = keys()["before"]  # re-encrypted
            assert new_key != old_key and f"key {new_key} is current" in done.stdout, done.stdout

            for who, c in (("a", ca), ("b", cb)):
                made = _created_under(c, who, new_key, keys)
                assert (
                    password_of(ca, made) == password_of(cb, made) == PASSWORD.format(made["name"])
                )
            assert password_of(ca, before) == password_of(cb, before) == PASSWORD.format("before")
    finally:
        a.stop()
        b.stop()
    for serve in (a, b):
        assert "Traceback" not in serve.log(), serve.log()


def test_an_admin_rotates_through_the_api_and_a_member_may_not(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    url = postgres("api_rotation")
    old, new = _new_key(), _new_key()
    a = Serve(tmp_path / "a", url, {"PULLKEEPER_KEYS": old})
    a.start()
    try:
        with client(a.url) as ca:
            ok(ca.post("/clusters", json={"name": "c1"}), 201)
            ok(ca.post("/projects", json={"name": "team", "cluster": "c1"}), 201)
            user = {"username": "mia", "password": "mia-password-Xk93"}
            ok(ca.post("/users", json=user), 201)
            ok(ca.put("/projects/team/members/mia", json={"role": "member"}), 200)
            token = ok(httpx.post(f"{a.url}/api/v1/login", json=user, timeout=30), 201)["token"]
            before = cred(ca, "before")
            # PULLKEEPER_KEYS holds no key the store does not know, and pullkeeper cannot add one.
            r = ca.post("/keys/rotate")
            assert r.status_code == 409, r.text
            assert "PULLKEEPER_KEYS" in r.json()["error"]["message"], r.text
    finally:
        a.stop()
    old_id = key_ids(tmp_path, url)["before"]

    # The new key reaches every replica's key source, and they restart with it; one lags.
    both = {"PULLKEEPER_KEYS": f"{old},{new}"}
    a, b = Serve(tmp_path / "a", url, both), Serve(tmp_path / "b", url, both)
    lagging = Serve(tmp_path / "lagging", url, {"PULLKEEPER_KEYS": old})
    servers = (a, b, lagging)
    for serve in servers:
        serve.start()
    try:
        with (
            client(a.url) as ca,
            client(b.url) as cb,
            client(lagging.url) as cl,
            httpx.Client(
                base_url=a.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}
            ) as member,
        ):
            for method, path in (("POST", "/keys/rotate"), ("GET", "/keys")):
                r = member.request(method, path)
                assert r.status_code == 403, r.text
                assert r.json()["error"]["code"] == "forbidden", r.text
            assert key_ids(tmp_path, url) == {"before": old_id}

            rotated = ok(ca.post("/keys/rotate"), 200)
            new_id = rotated["key"]
            assert new_id != old_id and rotated["reencrypted"] == 1, rotated
            assert key_ids(tmp_path, url) == {"before": new_id}

            # The other replica encrypts with the new key at once; so does this one.
            for who, c in (("b", cb), ("a", ca)):
                made = cred(c, f"after-{who}")
                assert key_ids(tmp_path, url)[made["name"]] == new_id
                assert (
                    password_of(ca, made) == password_of(cb, made) == PASSWORD.format(made["name"])
                )
            assert password_of(cb, before) == PASSWORD.format("before")

            # A replica without the new key refuses the write instead of using the old key.
            body = {"name": "lagging", "cluster": "c1", "scope": "cluster", "provider": "custom"}
            body |= {"server": "x.io", "username": "u", "password": "p-lag-91"}
            r = cl.post("/credentials", json=body)
            assert r.status_code == 503, r.text
            message = r.json()["error"]["message"]
            assert new_id in message and "PULLKEEPER_KEYS" in message, message
            assert "lagging" not in key_ids(tmp_path, url)

            listed = ok(ca.get("/keys"), 200)["items"]
            assert [(k["id"], k["current"]) for k in listed] == [(new_id, True), (old_id, False)]
            # Every secret moved to the new key: the old one may leave the key source.
            assert listed[0]["secrets"] >= 3 and listed[1]["secrets"] == 0, listed
            events = ok(ca.get("/audit", params={"action": "keys.rotate"}), 200)["items"]
            assert [(e["actor"], e["object_id"]) for e in events] == [("admin", new_id)]
    finally:
        for serve in servers:
            serve.stop()
