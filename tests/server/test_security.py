"""Secrets at rest and in flight: never in the store's bytes, logs, responses; key rotation;
users' passwords, registry user names, and the store's file modes."""

from __future__ import annotations

import json
import logging
import os
import stat
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pullkeeper.app import create_app
from pullkeeper.services import keys
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import AuditEvent, Credential
from tests import pg
from tests.server.conftest import ADMIN_TOKEN, Env, assert_error, b64_auth, json_escaped

GCR_SECRET = "MIIEsecGcrKeyMaterial93kdQ"
GCR_KEY = json.dumps(
    {
        "type": "service_account",
        "client_email": "puller@acme.iam.gserviceaccount.com",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCR_SECRET}\n-----END PRIVATE KEY-----\n",
    }
)


def _forms(username: str, password: str) -> set[bytes]:
    """Every way a password could show up: raw, JSON-escaped, in a docker `auth` field."""
    return {
        password.encode(),
        json_escaped(password).encode(),
        b64_auth(username, password).encode(),
    }


def _all_loggers_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "pullkeeper", "alembic"):
        caplog.set_level(logging.DEBUG, logger=name)


def _run_of_changes(env: Env) -> tuple[list[tuple[str, str]], list[str]]:
    """Create and edit credentials with distinctive passwords; (username, password) pairs used."""
    env.cluster("c1")
    env.project("web")
    env.namespace("shop", "web")
    used: list[tuple[str, str]] = []

    def make(name: str, username: str, password: str, **kw: Any) -> dict[str, Any]:
        used.append((username, password))
        return env.cred(name, username=username, password=password, **kw)

    a = make("sec-custom", "robot", "pw-SEC-custom-7Qm2xR", server="registry.example.com")
    make("sec-hub", "hubber", "pw-SEC-hub-4Lk9zT", provider="dockerhub", server=None)
    gcr = make("sec-gcr", "_json_key", GCR_KEY, provider="gcr", server=None)
    used.append(("_json_key", GCR_SECRET))
    q = make(
        "sec-quay",
        "org+bot",
        "pw-SEC-quay-8Pw3vN",
        provider="quay",
        server=None,
        scope="namespace",
        namespace="shop",
    )
    gone = make("sec-gone", "robot", "pw-SEC-gone-2Hx6cB", server="gone.example.com")
    # Edits: a new password, a new login with its password, a state change, a deletion.
    env.admin.ok("PATCH", f"credentials/{a['id']}", json={"password": "pw-SEC-edit-5Rt8yU"})
    used.append(("robot", "pw-SEC-edit-5Rt8yU"))
    env.admin.ok(
        "PATCH",
        f"credentials/{q['id']}",
        json={"username": "org+bot2", "password": "pw-SEC-relogin-3Ja1eW"},
    )
    used.append(("org+bot2", "pw-SEC-relogin-3Ja1eW"))
    env.admin.ok("POST", f"credentials/{q['id']}/deactivate")
    assert env.admin.delete(f"credentials/{gone['id']}").status_code == 204
    # Refused attempts carrying passwords.
    refused = [
        ("robot", "pw-SEC-refused-9Kq2oP"),
        ("bob", "pw-SEC-refused-gcr-6Tg4"),
    ]
    used.extend(refused)
    r = env.admin.post(
        "credentials",
        json={
            "name": "sec-refused",
            "cluster": "c1",
            "scope": "cluster",
            "server": "https://refused.example.com",
            "username": "robot",
            "password": "pw-SEC-refused-9Kq2oP",
        },
    )
    assert_error(r, 422, field="server")
    r = env.admin.patch(
        f"credentials/{gcr['id']}", json={"username": "bob", "password": "pw-SEC-refused-gcr-6Tg4"}
    )
    assert_error(r, 422)
    r = env.admin.post(
        "credentials",
        content=b'{"name": "x", "password": "pw-SEC-broken-1Zx0", ',
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400)
    used.append(("x", "pw-SEC-broken-1Zx0"))
    # Reads of every kind.
    env.admin.ok("GET", "credentials")
    env.admin.ok("GET", "namespaces/shop/effective-credentials", params={"cluster": "c1"})
    env.admin.ok("GET", "audit", params={"limit": 1000})
    for cid in (a["id"], q["id"], gcr["id"]):
        env.admin.ok("GET", f"credentials/{cid}")
        env.secret(cid)
    env.anon.get("/metrics")
    env.user("alice", login=True)
    return used, [a["id"], q["id"], gcr["id"]]


def _assert_absent(blob: bytes, used: list[tuple[str, str]], where: str) -> None:
    for username, password in used:
        for form in _forms(username, password):
            assert form not in blob, f"{where} holds a password ({password[:10]}...)"


def test_no_password_in_the_store_logs_or_responses(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    _all_loggers_at_debug(caplog)
    used, _ = _run_of_changes(env)
    used.append(("alice", "pw-user-alice-Kd93"))
    used.append(("admin", env.admin_password))

    # The store's raw bytes.
    if env.backend.name == "sqlite":
        files = sorted(env.data.glob("pullkeeper.db*"))
        assert {"pullkeeper.db", "pullkeeper.db-wal"} <= {p.name for p in files}
        raw = b"".join(p.read_bytes() for p in files)
        where = "the SQLite files " + ", ".join(p.name for p in files)
    else:
        assert env.database_url.endswith("/pullkeeper")
        raw = pg.dump(env.database_url)
        where = "the PostgreSQL dump"
    # The bytes are really the store's: what is not secret is there in clear.
    for marker in (b"sec-custom", b"org+bot2", b"registry.example.com", b"credential.update"):
        assert marker in raw, (where, marker)
    _assert_absent(raw, used, where)

    # Every log record, at DEBUG for every logger (SQL statements and parameters included).
    logged = "\n".join(
        [caplog.text]
        + [r.getMessage() for r in caplog.records]
        + [r.exc_text or "" for r in caplog.records]
    ).encode()
    assert b"INSERT INTO credentials" in logged  # the engine's logging was really on
    _assert_absent(logged, used, "the logs")

    # Every response of the run, bodies and headers, but the secret reads themselves.
    checked = 0
    for method, url, status, body, head in env.responses:
        if url.endswith("/dockerconfigjson") and status == 200:
            continue
        _assert_absent(body + head.encode(), used, f"{method} {url} -> {status}")
        checked += 1
    assert checked >= 20

    # The audit table holds no password either (checked through the ORM too).
    with env.server.transaction() as session:
        events = session.scalars(select(AuditEvent)).all()
        dumped = json.dumps([[e.before, e.after] for e in events]).encode()
    _assert_absent(dumped, used, "the audit table")


def test_secrets_are_encrypted_and_bound_to_their_record(env: Env) -> None:
    env.cluster("c1")
    a = env.cred("one", password="pw-bound-one-4Fg7", server="one.example.com")
    b = env.cred("two", password="pw-bound-two-4Fg7", server="two.example.com")
    with env.server.transaction() as session:
        rows = {c.id: c for c in session.scalars(select(Credential))}
        assert rows[a["id"]].secret_key_id == keys.current(env.server)
        assert b"pw-bound" not in rows[a["id"]].secret_blob
        # Swapping two records' blobs does not swap their passwords: each is bound to its id.
        rows[a["id"]].secret_blob, rows[b["id"]].secret_blob = (
            rows[b["id"]].secret_blob,
            rows[a["id"]].secret_blob,
        )
    r = env.admin.get(f"credentials/{a['id']}/dockerconfigjson")
    assert r.status_code == 500
    assert_error(r, 500, "internal", field=None)
    assert "pw-bound" not in r.text


def _key_ids(env: Env) -> dict[str, str]:
    with env.server.transaction() as session:
        return {c.name: c.secret_key_id for c in session.scalars(select(Credential))}


def test_key_rotation(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    made = {
        "a": env.cred("a", password="pw-rotate-a-1Xc", server="a.example.com"),
        "b": env.cred("b", scope="project", project="web", password="pw-rotate-b-1Xc"),
        "c": env.cred("c", password="pw-rotate-c-1Xc", server="c.example.com", active=False),
        "g": env.cred("g", provider="gcr", server=None, username="", password=GCR_KEY),
    }
    before = {name: env.secret(c["id"]) for name, c in made.items()}
    old = keys.current(env.server)
    assert set(_key_ids(env).values()) == {old}
    with env.server.transaction() as session:
        old_blobs = {r.name: r.secret_blob for r in session.scalars(select(Credential))}

    key_id, count = keys.rotate(env.server)
    assert (count, keys.current(env.server)) == (4, key_id)
    assert key_id != old
    assert set(_key_ids(env).values()) == {key_id}
    with env.server.transaction() as session:
        for row in session.scalars(select(Credential)):
            assert row.secret_blob != old_blobs[row.name]
    for name, c in made.items():
        assert env.secret(c["id"]) == before[name]
    assert before["g"] == {"gcr.io": ("_json_key", GCR_KEY, "")}

    keydir = env.data / "keys"
    assert (keydir / f"{old}.key").exists() and (keydir / f"{key_id}.key").exists()
    for path in keydir.glob("*.key"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert sorted(p.stem for p in keydir.glob("*.key")) == sorted([old, key_id])
    events = env.audit(action="keys.rotate")
    assert [(e["actor"], e["object_id"], e["after"]) for e in events] == [
        ("system", key_id, {"reencrypted": 4})
    ]

    # Another process on the same data and store reads every secret after the rotation.
    other = Server(Settings(data=env.data, database_url=env.database_url))
    try:
        with TestClient(create_app(other), raise_server_exceptions=False) as client:
            for name, c in made.items():
                r = client.get(
                    f"/api/v1/credentials/{c['id']}/dockerconfigjson",
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                assert r.status_code == 200, r.text
                assert (
                    json.loads(r.content)["auths"][c["server"]]["password"]
                    == (before[name][c["server"]][1])
                )
    finally:
        other.close()

    # New credentials use the new key; a second rotation re-encrypts everything again.
    env.cred("d", password="pw-rotate-d-1Xc", server="d.example.com")
    assert _key_ids(env)["d"] == key_id
    second, count = keys.rotate(env.server)
    assert count == 5 and set(_key_ids(env).values()) == {second}
    assert env.secret(made["a"]["id"]) == before["a"]
    assert len(list(keydir.glob("*.key"))) == 3


def test_rotation_with_nothing_to_reencrypt(env: Env) -> None:
    key_id, count = keys.rotate(env.server)
    assert count == 0 and keys.current(env.server) == key_id
    env.cluster("c1")
    c = env.cred("after", password="pw-after-rotation-1Xc")
    assert _key_ids(env) == {"after": key_id}
    assert env.secret(c["id"]) == {"registry.example.com": ("robot", "pw-after-rotation-1Xc", "")}


# --------------------------------------------------------------------------- users' passwords

WEAK_PASSWORDS = [
    # (password, user name, what the refusal says)
    ("Xy7!pq2Z", "release-manager", "at least 12 characters"),  # 8: was enough for a new user
    (" " * 12, "release-manager", "only spaces"),
    ("\t" + " " * 20, "release-manager", "only spaces"),
    ("Release-Manager", "release-manager", "the user name"),
]


@pytest.mark.parametrize(("password", "username", "says"), WEAK_PASSWORDS)
def test_one_password_rule_for_new_users_and_resets(
    env: Env, password: str, username: str, says: str
) -> None:
    r = env.admin.post("users", json={"username": username, "password": password})
    error = assert_error(r, 422, field="password", message=says)
    assert password not in error["message"]
    assert [u["username"] for u in env.admin.ok("GET", "users")["items"]] == ["admin"]

    good = "release-manager-passphrase"
    made = env.admin.ok("POST", "users", json={"username": username, "password": good})
    r = env.admin.put(f"users/{made['id']}/password", json={"password": password})
    assert_error(r, 422, field="password", message=says)
    # Refused resets change nothing: the old password still logs in.
    env.anon.ok("POST", "login", json={"username": username, "password": good})
    assert env.audit(action="user.password_reset") == []


# --------------------------------------------------------------------------- credential user names

BAD_REGISTRY_USERNAMES = [
    # (user name, what the refusal says)
    ("robot:extra", "cannot contain ':'"),
    ("robot\nadmin", "a line feed"),
    ("robot\r\n", "a carriage return"),
    ("ro\x1bbot", "U+001B"),
    ("robot\u2028", "U+2028"),
]


@pytest.mark.parametrize(("username", "says"), BAD_REGISTRY_USERNAMES)
def test_credential_user_names_the_auth_field_cannot_carry(
    env: Env, username: str, says: str
) -> None:
    env.cluster("c1")
    body = {
        "name": "bad-login",
        "cluster": "c1",
        "scope": "cluster",
        "provider": "custom",
        "server": "registry.example.com",
        "username": username,
        "password": "pw-colon-user-8Hd2",
    }
    error = assert_error(env.admin.post("credentials", json=body), 422, field="username")
    assert says in error["message"]
    assert username not in error["message"]
    assert env.admin.ok("GET", "credentials")["total"] == 0

    # An edit is refused the same way, and leaves the stored login as it was.
    made = env.cred("good-login", username="robot", password="pw-good-login-3Kd9")
    r = env.admin.patch(
        f"credentials/{made['id']}", json={"username": username, "password": "pw-new-4Ls8Qw"}
    )
    assert_error(r, 422, field="username")
    assert env.secret(made["id"]) == {"registry.example.com": ("robot", "pw-good-login-3Kd9", "")}


# --------------------------------------------------------------------------- the store's files


@pytest.fixture
def umask_022() -> Any:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(data: Any) -> dict[str, int]:
    return {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in data.glob("pullkeeper.db*")}


@pytest.mark.usefixtures("umask_022")
def test_sqlite_files_are_private_in_a_data_directory_that_existed(tmp_path: Any) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # made by the operator, readable by everyone
    server = Server(Settings(data=data, admin_token=ADMIN_TOKEN))
    try:
        server.migrate()
        assert server.first_start() is not None
        with TestClient(create_app(server), raise_server_exceptions=False) as client:
            r = client.post(
                "/api/v1/clusters",
                json={"name": "c1"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 201, r.text
        modes = _modes(data)
        assert set(modes) == {"pullkeeper.db", "pullkeeper.db-wal", "pullkeeper.db-shm"}
        assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
    finally:
        server.close()


@pytest.mark.usefixtures("umask_022")
def test_sqlite_files_left_readable_are_made_private(tmp_path: Any) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    server = Server(Settings(data=data, admin_token=ADMIN_TOKEN))
    server.migrate()
    server.first_start()
    # As an earlier release left them: every file readable by everyone, the WAL kept.
    for path in data.glob("pullkeeper.db*"):
        os.chmod(path, 0o644)
    assert set(_modes(data).values()) == {0o644}
    again = Server(Settings(data=data))
    try:
        again.migrate()
        assert again.first_start() is None
        modes = _modes(data)
        assert "pullkeeper.db-wal" in modes
        assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
    finally:
        again.close()
        server.close()
