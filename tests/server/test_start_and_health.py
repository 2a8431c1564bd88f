"""First start, health, readiness and metrics."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pullkeeper.api.app import create_app
from pullkeeper.services import keys as key_service
from pullkeeper.services.server import Server
from pullkeeper.store.vault import fingerprint
from tests.server.conftest import ADMIN_TOKEN, Backend, Env, assert_error


def _client(server: Server) -> TestClient:
    return TestClient(create_app(server), raise_server_exceptions=False)


def test_first_start_creates_the_admin_once(make_server: Callable[..., Server]) -> None:
    server = make_server(admin_token=ADMIN_TOKEN)
    first = server.first_start()
    assert first is not None
    assert first.token == ADMIN_TOKEN  # the admin_token setting is the admin's token
    client = _client(server)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/api/v1/me", headers=admin).json() == {
        "username": "admin",
        "admin": True,
        "viewer": False,
        "projects": {},
    }
    users = client.get("/api/v1/users", headers=admin).json()["items"]
    assert [(u["username"], u["admin"], u["viewer"]) for u in users] == [("admin", True, False)]

    # Every later first start does nothing.
    assert server.first_start() is None
    assert server.first_start() is None
    assert client.get("/api/v1/users", headers=admin).json()["items"] == users

    # The given token is issued without expiry.
    tokens = client.get("/api/v1/tokens", headers=admin).json()["items"]
    assert [(t["name"], t["expires_at"], t["revoked"]) for t in tokens] == [
        ("initial", None, False)
    ]
    # The password shown once at first start logs in as the admin.
    r = client.post("/api/v1/login", json={"username": "admin", "password": first.password})
    assert r.status_code == 201, r.text
    login = r.json()["token"]
    assert login.startswith("pk_") and login != ADMIN_TOKEN
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {login}"})
    assert me.json()["admin"] is True
    # The first start is audited, and no event holds the password or the token.
    events = client.get("/api/v1/audit", headers=admin).json()["items"]
    assert sorted((e["actor"], e["action"]) for e in events) == [
        ("admin", "token.create"),
        ("admin", "user.login"),
        ("system", "token.create"),
        ("system", "user.create"),
    ]
    assert first.password not in str(events) and ADMIN_TOKEN not in str(events)


def test_first_start_on_a_restarted_server_returns_none(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(admin_token=ADMIN_TOKEN)
    assert server.first_start() is not None
    server.close()
    again = make_server(database_url=server.settings.database_url)
    assert again.first_start() is None
    r = _client(again).get("/api/v1/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200 and r.json()["username"] == "admin"


def test_first_start_without_admin_token_generates_one(make_server: Callable[..., Server]) -> None:
    server = make_server()
    first = server.first_start()
    assert first is not None
    assert first.token.startswith("pk_") and len(first.token) >= 40
    assert len(first.password) >= 16
    client = _client(server)
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {first.token}"})
    assert r.status_code == 200 and r.json()["username"] == "admin"
    assert_error(client.get("/api/v1/me", headers={"Authorization": "Bearer pk_guess"}), 401)
    assert server.first_start() is None


def test_admin_token_from_the_environment(
    make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "pk_from-the-environment-5b1e0c9d7a"
    monkeypatch.setenv("PULLKEEPER_ADMIN_TOKEN", token)
    server = make_server()
    first = server.first_start()
    assert first is not None and first.token == token
    r = _client(server).get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["admin"] is True


def test_key_files_are_private(env: Env) -> None:
    keys = env.data / "keys"
    files = sorted(keys.glob("*.key"))
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600, files[0]
    assert len(files[0].read_bytes()) == 32  # AES-256
    # Named after its fingerprint, which the store records as the current key.
    assert files[0].stem == fingerprint(files[0].read_bytes()) == key_service.current(env.server)
    assert stat.S_IMODE(os.stat(keys).st_mode) & 0o077 == 0


def test_healthz_and_readyz(env: Env) -> None:
    r = env.anon.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = env.anon.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_readyz_is_503_while_the_store_is_unreachable(env: Env, backend: Backend) -> None:
    env.server.db.dispose()
    if backend.name == "postgresql":
        backend.drop()  # the database really goes away, connections included
    else:
        db = env.data / "pullkeeper.db"
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        db.mkdir()  # what is left at the store's path cannot be opened as a database
    r = env.anon.get("/readyz")
    assert_error(r, 503, "not_ready", field=None, message="the store is not reachable")
    # Liveness does not depend on the store.
    assert env.anon.get("/healthz").status_code == 200

    # Once the store is back, the same process is ready again.
    if backend.name == "postgresql":
        backend.create()
    else:
        (env.data / "pullkeeper.db").rmdir()
    r = env.anon.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics(env: Env) -> None:
    env.cluster("c1")
    ids = [env.cred(f"cred-{i}", server=f"r{i}.example.com")["id"] for i in range(3)]
    gone = env.cred("cred-inactive", server="r9.example.com", active=False)["id"]
    env.admin.ok("POST", f"credentials/{ids[2]}/deactivate")
    env.admin.ok("DELETE", f"credentials/{gone}", status=204)
    for i in range(3):
        env.anon.get("/healthz")
        env.admin.get(f"no-such-route-{i}")
    assert env.admin.get("clusters/nope").status_code == 404
    assert env.admin.get("clusters/nope").status_code == 404

    r = env.anon.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE pullkeeper_http_requests_total counter" in r.text
    assert "# TYPE pullkeeper_credentials gauge" in r.text
    samples = _samples(r.text)

    def requests(method: str, route: str, status: str) -> float:
        key = (
            "pullkeeper_http_requests_total",
            (("method", method), ("route", route), ("status", status)),
        )
        return samples.get(key, 0.0)

    assert requests("GET", "/healthz", "200") == 3.0
    # Unknown paths share one label: request paths never become label values.
    routes = {labels for name, labels in samples if name == "pullkeeper_http_requests_total"}
    assert not any("nope" in value or "no-such" in value for r in routes for _, value in r)
    unmatched = [
        dict(r) for r in routes if dict(r)["status"] == "404" and "{" not in dict(r)["route"]
    ]
    assert len(unmatched) == 1, unmatched
    assert requests("GET", "/api/v1/clusters/{cluster}", "404") == 2.0
    assert requests("POST", "/api/v1/credentials", "201") == 4.0
    assert requests("POST", "/api/v1/credentials/{credential_id}/deactivate", "200") == 1.0
    assert requests("DELETE", "/api/v1/credentials/{credential_id}", "204") == 1.0
    assert (
        "pullkeeper_http_request_seconds_count",
        (("method", "GET"), ("route", "/healthz")),
    ) in (samples)

    active = samples[("pullkeeper_credentials", (("state", "active"),))]
    inactive = samples[("pullkeeper_credentials", (("state", "inactive"),))]
    assert (active, inactive) == (2.0, 1.0)
    listed_active = env.admin.ok("GET", "credentials", params={"state": "active"})["total"]
    listed_inactive = env.admin.ok("GET", "credentials", params={"state": "inactive"})["total"]
    assert (active, inactive) == (listed_active, listed_inactive)

    # The gauge follows changes: activating one moves it between the states.
    env.admin.ok("POST", f"credentials/{ids[2]}/activate")
    samples = _samples(env.anon.get("/metrics").text)
    assert samples[("pullkeeper_credentials", (("state", "active"),))] == 3.0
    assert samples[("pullkeeper_credentials", (("state", "inactive"),))] == 0.0
