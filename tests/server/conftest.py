"""The management server's API, driven in-process over HTTP on SQLite and on a real PostgreSQL.

Every test runs twice: `backend` is a session fixture parametrized over SQLite (a file in the
test's own data directory) and PostgreSQL 15 (one server per session from tests/pg.py). Each
test gets a store of its own: a copy of a store that went through migration and first start
once per session (`template`), with its encryption key, in a new data directory; on
PostgreSQL the copy is a new database `pullkeeper` created from a template database, so
tests.pg.dump() reads the test's own store. Tests of the first start itself use fresh, empty
stores (`make_server`).

Every HTTP call goes through `Api`, which remembers each password a request sends and fails the
test at once if any later response body or header carries one (only a secret read,
`GET /credentials/{id}/dockerconfigjson`, may).
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from pullkeeper.app import create_app
from pullkeeper.services import auth
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import User
from tests import pg
from tests.tools import missing

API = "/api/v1"
ADMIN_TOKEN = "pk_server-suite-admin-token-3f9a61c07b2e4d58"
_DEFAULT: Any = object()

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
    503: "not_ready",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(**kw): Settings overrides for the `env` fixture's server"
    )


# --------------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    pg_url: str | None = None

    def _admin(self, *statements: sql.Composed) -> str:
        assert self.pg_url is not None
        base = self.pg_url.rsplit("/", 1)[0]
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        return base

    def fresh_url(self, database: str = "pullkeeper", template: str | None = None) -> str:
        """A brand-new database (PostgreSQL; empty or a copy of template), or "" for SQLite."""
        if self.pg_url is None:
            return ""
        name = sql.Identifier(database)
        create = sql.SQL("CREATE DATABASE {}").format(name)
        if template:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                name, sql.Identifier(template)
            )
        base = self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name), create)
        return f"{base}/{database}"

    def drop(self, database: str = "pullkeeper") -> None:
        """Drop a database, ending every connection to it."""
        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )

    def create(self, database: str = "pullkeeper") -> None:
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    reason = pg.available()
    if reason:
        missing(
            f"PostgreSQL: {reason}. The PostgreSQL half of tests/server does not run "
            "(PostgreSQL 15 ships with the machine image)."
        )
    with pg.postgres() as url:
        yield Backend("postgresql", url)


@pytest.fixture
def make_server(backend: Backend, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Servers on a fresh store; pass database_url to reopen an existing one."""
    servers: list[Server] = []

    def make(data: str = "data", database: str = "pullkeeper", **overrides: Any) -> Server:
        if "database_url" not in overrides:
            overrides["database_url"] = backend.fresh_url(database)
        server = Server.open(Settings(data=tmp_path / data, **overrides))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


# --------------------------------------------------------------------------- the HTTP client


def user_password(username: str) -> str:
    return f"pw-user-{username}-Kd93"


@functools.cache
def _password_hash(username: str) -> str:
    return PasswordHasher().hash(user_password(username))


def b64_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def json_escaped(value: str) -> str:
    return json.dumps(value)[1:-1]


class LeakedSecret(AssertionError):
    pass


class Api:
    """HTTP calls as one caller (a bearer token, or none)."""

    def __init__(self, env: Env, token: str | None, client: TestClient | None = None) -> None:
        self.env, self.token = env, token
        self.client = client or env.client

    def as_(self, token: str | None) -> Api:
        return Api(self.env, token, self.client)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: Any = _DEFAULT,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        url = path if path.startswith("/") else f"{API}/{path}"
        hdrs = dict(headers or {})
        tok = self.token if token is _DEFAULT else token
        if tok is not None:
            hdrs.setdefault("Authorization", f"Bearer {tok}")
        self.env.learn(kw.get("json"))
        response: httpx.Response = self.client.request(method, url, headers=hdrs, **kw)
        self.env.guard(method, url, response)
        return response

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("DELETE", path, **kw)

    def ok(self, method: str, path: str, status: int | None = None, **kw: Any) -> Any:
        """The JSON of a call that must succeed with `status` (200, or 201 for POST creates)."""
        response = self.call(method, path, **kw)
        expected = status or (201 if method == "POST" and _creates(path) else 200)
        assert response.status_code == expected, (
            f"{method} {path}: expected {expected}, got {response.status_code}: {response.text}"
        )
        return response.json() if response.content else None


def _creates(path: str) -> bool:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last in ("clusters", "projects", "credentials", "users", "tokens", "login")


def assert_error(
    response: httpx.Response,
    status: int,
    code: str | None = None,
    field: Any = _DEFAULT,
    message: str | None = None,
) -> dict[str, Any]:
    """An error response: exactly {"error": {"code", "message", "field"}} with these values."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: " + (
        response.text
    )
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "field"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert err["code"] == (code or STATUS_CODES[status]), err
    if field is not _DEFAULT:
        assert err["field"] == field, err
    if message is not None:
        assert message in err["message"], err
    result: dict[str, Any] = err
    return result


# --------------------------------------------------------------------------- the environment


@dataclass
class Env:
    backend: Backend
    server: Server
    app: FastAPI
    client: TestClient
    admin_password: str
    data: Path
    database_url: str
    secrets: set[str] = field(default_factory=set)
    responses: list[tuple[str, str, int, bytes, str]] = field(default_factory=list)
    clients: list[TestClient] = field(default_factory=list)

    # -- leak guard

    def learn(self, body: Any) -> None:
        if isinstance(body, dict):
            identity = body.get("identity")
            given = [body.get("password")]
            if isinstance(identity, dict):  # a cloud identity's secret, and a GCR key's parts
                secret = identity.get("secret")
                given.append(secret)
                if isinstance(secret, str) and secret.startswith("{"):
                    given.append(json.loads(secret).get("private_key"))
            self.secrets.update(s for s in given if isinstance(s, str) and len(s) >= 8)

    def guard(self, method: str, url: str, response: httpx.Response) -> None:
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.responses.append((method, url, response.status_code, response.content, head))
        # The two reads that answer passwords.
        if (
            url.endswith(("/dockerconfigjson", "/node-credentials", "/node-profile"))
            and response.status_code == 200
        ):
            return
        text = response.content.decode("utf-8", "replace")
        for secret in self.secrets:
            for form in {secret, json_escaped(secret)}:
                if form in text or form in head:
                    raise LeakedSecret(
                        f"{method} {url} -> {response.status_code}: the response carries a "
                        f"password sent earlier ({secret[:4]}...)"
                    )

    # -- callers

    @property
    def admin(self) -> Api:
        return Api(self, ADMIN_TOKEN)

    @property
    def anon(self) -> Api:
        return Api(self, None)

    def api(self, token: str | None) -> Api:
        return Api(self, token)

    def client_from(self, host: str) -> Api:
        """A caller whose requests come from another source address."""
        client = TestClient(self.app, raise_server_exceptions=False, client=(host, 40000))
        self.clients.append(client)
        return Api(self, None, client)

    # -- building blocks, all through the API as the admin

    def cluster(self, name: str = "c1", **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin.ok("POST", "clusters", json={"name": name, **kw})
        return result

    def project(self, name: str, cluster: str = "c1", **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin.ok(
            "POST", "projects", json={"name": name, "cluster": cluster, **kw}
        )
        return result

    def namespace(self, name: str, project: str | None = None, cluster: str = "c1") -> Any:
        return self.admin.ok(
            "PUT", f"clusters/{cluster}/namespaces/{name}", json={"project": project}
        )

    def cred(
        self,
        name: str,
        *,
        api: Api | None = None,
        cluster: str = "c1",
        scope: str = "cluster",
        provider: str = "custom",
        server: str | None = "registry.example.com",
        username: str = "robot",
        password: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "cluster": cluster,
            "scope": scope,
            "provider": provider,
            "server": server,
            "username": username,
            "password": password or f"pw-{name}-Zq81xv",
            **kw,
        }
        result: dict[str, Any] = (api or self.admin).ok("POST", "credentials", json=body)
        return result

    def user(
        self, username: str, *, admin: bool = False, viewer: bool = False, login: bool = False
    ) -> tuple[dict[str, Any], str]:
        """Create a user through the API; returns (user, an API token of theirs).

        The token comes from POST /login when `login`, else straight from the token service
        (password hashing is slow, and most tests are not about logging in).
        """
        password = user_password(username)
        user = self.admin.ok(
            "POST",
            "users",
            json={"username": username, "password": password, "admin": admin, "viewer": viewer},
        )
        if login:
            token = self.anon.ok(
                "POST", "login", json={"username": username, "password": password}
            )["token"]
        else:
            with self.server.transaction() as session:
                row = auth.get_user(session, user["id"])
                token = auth.issue_token(session, SYSTEM, row, "test", None).token
        return user, token

    def quick_user(self, username: str, *, viewer: bool = False) -> tuple[str, str]:
        """A user written straight to the store with a ready-made password hash; (id, token).

        For the worlds of role tests: creating users through the API is tested elsewhere, and
        hashing each user's password there would take most of these tests' time.
        """
        with self.server.transaction() as session:
            row = User(username=username, password_hash=_password_hash(username), viewer=viewer)
            session.add(row)
            session.flush()
            token = auth.issue_token(session, SYSTEM, row, "test", None).token
            return row.id, token

    def member(self, project: str, username: str, role: str) -> None:
        self.admin.ok("PUT", f"projects/{project}/members/{username}", json={"role": role})

    def secret(self, credential_id: str, api: Api | None = None) -> dict[str, tuple[str, str, str]]:
        response = (api or self.admin).get(f"credentials/{credential_id}/dockerconfigjson")
        assert response.status_code == 200, response.text
        return decode_config(response.content)

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.admin.ok(
            "GET", "audit", params={"limit": 1000, **params}
        )["items"]
        return items


def decode_config(payload: bytes) -> dict[str, tuple[str, str, str]]:
    """server -> (username, password, email) of a config.json, checking `auth` agrees."""
    doc = json.loads(payload)
    assert set(doc) == {"auths"}, doc
    out = {}
    for server, entry in doc["auths"].items():
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        assert (user, password) == (entry["username"], entry["password"]), entry
        out[server] = (entry["username"], entry["password"], entry.get("email", ""))
    return out


@dataclass(frozen=True)
class Template:
    """A store right after its first start, made once per backend and copied for each test.

    The first start hashes the admin's password (argon2, slow on purpose); copying its result
    keeps every test on a store of its own without paying for that each time. The first start
    itself is tested on fresh stores in test_start_and_health.py.
    """

    data: Path
    database: str
    admin_password: str


# What an admin allows so that the server reaches the registries tests run on 127.0.0.1.
LOOPBACK = ["127.0.0.1"]


@pytest.fixture(scope="session")
def template(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Template:
    data = tmp_path_factory.mktemp(f"template-{backend.name}")
    server = Server.open(
        Settings(data=data, database_url=backend.fresh_url("pk_template"), admin_token=ADMIN_TOKEN)
    )
    first = server.first_start()
    server.close()
    assert first is not None and first.token == ADMIN_TOKEN
    return Template(data, "pk_template", first.password)


@pytest.fixture
def env(
    request: pytest.FixtureRequest, backend: Backend, template: Template, tmp_path: Path
) -> Iterator[Env]:
    marker = request.node.get_closest_marker("settings")
    # Clusters here have no reachable API: the sync is tested with a fake one in tests/sync.
    # The test registries listen on loopback, which the server reaches only when allowed.
    overrides = {"sync": False, "egress_allow": LOOPBACK, **(marker.kwargs if marker else {})}
    data = tmp_path / "data"
    data.mkdir()
    for db in template.data.glob("pullkeeper.db*"):
        shutil.copyfile(db, data / db.name)
    # The store's keys come with it: a server refuses a store whose keys it does not hold.
    shutil.copytree(template.data / "keys", data / "keys")
    url = backend.fresh_url("pullkeeper", template=template.database)
    server = Server.open(
        Settings(data=data, database_url=url, admin_token=ADMIN_TOKEN, **overrides)
    )
    assert server.first_start() is None  # the admin exists already
    app = create_app(server)
    with TestClient(app, raise_server_exceptions=False) as client:
        e = Env(
            backend=backend,
            server=server,
            app=app,
            client=client,
            admin_password=template.admin_password,
            data=data,
            database_url=url,
        )
        e.secrets.add(template.admin_password)
        yield e
        for extra in e.clients:
            extra.close()
    server.close()


# --------------------------------------------------------------------------- a shared world


@dataclass
class World:
    """Two projects in one cluster (alpha, beta), a third in another cluster (gamma)."""

    env: Env
    ids: dict[str, str]
    tokens: dict[str, str]
    creds: dict[str, dict[str, Any]]

    def as_(self, who: str) -> Api:
        return self.env.api(self.tokens[who])


def build_world(env: Env, users: tuple[str, ...] = ()) -> World:
    ids: dict[str, str] = {}
    ids["c1"] = env.cluster("c1")["id"]
    ids["c2"] = env.cluster("c2")["id"]
    for name, cluster in (("alpha", "c1"), ("beta", "c1"), ("gamma", "c2")):
        ids[name] = env.project(name, cluster)["id"]
    for ns, project, cluster in (
        ("a-web", "alpha", "c1"),
        ("a-api", "alpha", "c1"),
        ("b-web", "beta", "c1"),
        ("free", None, "c1"),
        ("g-web", "gamma", "c2"),
    ):
        ids["ns:" + ns] = env.namespace(ns, project, cluster)["id"]
    creds = {
        "alpha-proj": env.cred("alpha-proj", scope="project", project="alpha"),
        "alpha-ns": env.cred(
            "alpha-ns", scope="namespace", namespace="a-web", server="quay.io", provider="quay"
        ),
        "beta-proj": env.cred("beta-proj", scope="project", project="beta"),
        "beta-ns": env.cred("beta-ns", scope="namespace", namespace="b-web", server="ghcr.io"),
        "c1-wide": env.cred("c1-wide", scope="cluster", server="mirror.example.com"),
        "free-ns": env.cred("free-ns", scope="namespace", namespace="free"),
        "gamma-proj": env.cred("gamma-proj", cluster="c2", scope="project", project="gamma"),
    }
    tokens: dict[str, str] = {}
    roles = {
        "owner-a": ("alpha", "owner"),
        "member-a": ("alpha", "member"),
        "viewer-a": ("alpha", "viewer"),
        "owner-b": ("beta", "owner"),
    }
    for who in users:
        ids["user:" + who], tokens[who] = env.quick_user(who, viewer=who == "gviewer")
        if who in roles:
            env.member(roles[who][0], who, roles[who][1])
    return World(env, ids, tokens, creds)
