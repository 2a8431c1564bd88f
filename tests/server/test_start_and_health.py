"""First start, health, readiness and metrics."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from pullkeeper.app import create_app
from pullkeeper.services import keys as key_service
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.vault import fingerprint
from tests.integration.conftest import assert_one_line_error, pk
from tests.integration.test_cli_server import start_server
from tests.server.conftest import ADMIN_TOKEN, Backend, Env, assert_error


def _private_text(path: Path | None) -> str:
    """The text of a file only its owner may read or write."""
    assert path is not None and path.is_file() and not path.is_symlink(), path
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600, oct(os.lstat(path).st_mode)
    return path.read_text()


def _client(server: Server) -> TestClient:
    return TestClient(create_app(server), raise_server_exceptions=False)


def test_first_start_creates_the_admin_once(make_server: Callable[..., Server]) -> None:
    server = make_server(admin_token=ADMIN_TOKEN)
    first = server.first_start()
    assert first is not None
    assert first.token == ADMIN_TOKEN  # the admin_token setting is the admin's token
    # The password is in a private file of the data directory; the chosen token is not.
    data = server.settings.data.resolve()
    assert first.password_file == data / "initial-admin-password"
    assert _private_text(first.password_file) == first.password + "\n"
    assert first.token_file is None and not (data / "initial-admin-token").exists()
    assert first.password not in repr(first) and ADMIN_TOKEN not in repr(first)
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
    data = server.settings.data.resolve()
    assert _private_text(first.password_file) == first.password + "\n"
    assert first.token_file == data / "initial-admin-token"
    assert _private_text(first.token_file) == first.token + "\n"
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


def test_first_start_files_replace_what_was_there(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    # A data directory that existed, with a readable file and a link where the login goes.
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not to be overwritten\n")
    (data / "initial-admin-password").symlink_to(elsewhere)
    (data / "initial-admin-token").write_text("pk_an-old-token\n")
    os.chmod(data / "initial-admin-token", 0o644)
    server = make_server()
    first = server.first_start()
    assert first is not None
    assert _private_text(first.password_file) == first.password + "\n"
    assert _private_text(first.token_file) == first.token + "\n"
    assert elsewhere.read_text() == "not to be overwritten\n"
    assert sorted(p.name for p in data.glob("*initial-admin-*")) == [
        "initial-admin-password",
        "initial-admin-token",
    ]  # no temporary file left behind


def test_a_chosen_token_leaves_no_old_token_file(make_server: Callable[..., Server]) -> None:
    server = make_server(admin_token=ADMIN_TOKEN)
    server.settings.data.mkdir(parents=True, exist_ok=True)
    (server.settings.data / "initial-admin-token").write_text("pk_from-an-earlier-store\n")
    first = server.first_start()
    assert first is not None and first.token_file is None
    assert not (server.settings.data / "initial-admin-token").exists()


WEAK_ADMIN_TOKENS = [
    # (token, what the refusal says)
    ("pk_short", "has 8 characters; it needs at least 32"),
    ("pk_x0123456789abcdef", "has 20 characters; it needs at least 32"),
    ("a" * 31, "has 31 characters; it needs at least 32"),
    (" " * 40, "spaces, control or non-ASCII characters"),
    ("pk_" + "x" * 30 + " ", "spaces, control or non-ASCII characters"),
    ("pk_" + "x" * 30 + "\n", "spaces, control or non-ASCII characters"),
]


@pytest.mark.parametrize(("token", "says"), WEAK_ADMIN_TOKENS)
def test_a_weak_admin_token_is_refused(token: str, says: str) -> None:
    with pytest.raises(ValidationError) as e:
        Settings(admin_token=token)
    [error] = e.value.errors()
    assert error["loc"] == ("admin_token",) and says in error["msg"]
    assert "openssl rand -hex 32" in error["msg"]
    assert token not in str(e.value)  # the refused token is never repeated


def test_admin_tokens_that_are_fine() -> None:
    assert Settings(admin_token="").admin_token is None  # set but empty: none given
    assert Settings(admin_token="a" * 32).admin_token is not None
    assert Settings(admin_token=ADMIN_TOKEN).admin_token is not None


def test_serve_refuses_a_short_admin_token(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PULLKEEPER_ADMIN_TOKEN": "pk_x0123456789abcdef",
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    result = pk("serve", "--data", str(tmp_path / "data"), "--port", "0", env=env)
    line = assert_one_line_error(result, 2)
    assert line == (
        "error: setting admin_token: the admin token has 20 characters; it needs at least 32: "
        "make a random one with `openssl rand -hex 32`"
    )
    assert "pk_x0123456789abcdef" not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_serve_keeps_the_first_login_out_of_its_output(tmp_path: Path) -> None:
    server = start_server(tmp_path, admin_token=None)
    try:
        password = server.admin_password  # read from the file the output names
        token_file = (tmp_path / "data" / "initial-admin-token").resolve()
        token = _private_text(token_file).removesuffix("\n")
        _private_text(tmp_path / "data" / "initial-admin-password")
        with httpx.Client(base_url=server.url + "/api/v1", trust_env=False) as client:
            r = client.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["admin"] is True
        # The log-in line the output gives works as written.
        output = server.stderr_log.read_text()
        [line] = [x for x in output.splitlines() if x.startswith("  log in:    ")]
        command, _, source = line.removeprefix("  log in:    ").partition(" < ")
        assert command == f"pullkeeper login {server.url} --username admin --password-stdin"
        assert Path(source) == (tmp_path / "data" / "initial-admin-password").resolve()
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home")}
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        result = pk(*command.split()[1:], stdin=Path(source).read_bytes(), env=env)
        assert result.returncode == 0, result.describe()
        assert result.stdout.startswith(f"Logged in to {server.url} as admin (admin).")
    finally:
        server.stop()
    output = server.stderr_log.read_text() + (tmp_path / "serve.out").read_text()
    assert password not in output and token not in output
    assert f"  API token: in {token_file} (readable by this user only)\n" in output


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
        # What is left at the store's path cannot be opened as a database. The server's
        # background work may open (and so re-create) the file between unlink and mkdir:
        # then try again.
        for _ in range(50):
            for suffix in ("", "-wal", "-shm"):
                db.with_name(db.name + suffix).unlink(missing_ok=True)
            try:
                db.mkdir()
                break
            except FileExistsError:
                continue
        assert db.is_dir()
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
