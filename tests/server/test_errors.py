"""The error envelope, authentication errors, body parsing and the body-size limit."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any, NoReturn

import jsonschema
import pytest

from pullkeeper.services import clusters
from pullkeeper.web import security
from tests.server.conftest import ADMIN_TOKEN, Env, assert_error
from tests.tools import run_async

LIMIT = 2048


def test_missing_or_bad_token_is_401(env: Env) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer pk_not-a-token"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
    ):
        for method, path in (("GET", "clusters"), ("POST", "clusters"), ("GET", "audit")):
            r = env.anon.call(method, path, headers=headers, json={"name": "c1"})
            assert_error(r, 401, field=None)
    # Nothing was created by the refused calls.
    assert env.admin.ok("GET", "clusters")["items"] == []


def test_unknown_route_and_method(env: Env) -> None:
    assert_error(env.admin.get("nothing-here"), 404, field=None)
    assert_error(env.admin.get("/nothing-here"), 404, field=None)
    assert_error(env.admin.put("clusters", json={"name": "c1"}), 405, field=None)
    assert_error(env.admin.get("clusters/nope"), 404, field=None, message="nope")


def test_invalid_json_is_400(env: Env) -> None:
    leaked = "pw-in-broken-json-Hq2m7Ld"
    env.secrets.add(leaked)
    for raw in (
        b'{"name": ',
        b"{'name': 'c1'}",
        b'{"name": "c1",}',
        b"not json at all",
        b'{"name": "x", "password": "' + leaked.encode() + b'", ',
    ):
        r = env.admin.post("clusters", content=raw, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "bad_request", field=None)
        assert leaked not in r.text
    r = env.admin.post(
        "credentials",
        content=b'{"name": "x", "password": "' + leaked.encode() + b'"',
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "bad_request")
    assert env.admin.ok("GET", "clusters")["items"] == []


def test_wrong_body_shape_is_422(env: Env) -> None:
    assert_error(env.admin.post("clusters", json=["c1"]), 422)
    assert_error(env.admin.post("clusters", json={}), 422, field="name")
    assert_error(env.admin.post("clusters", json={"name": 5}), 422, field="name")
    assert_error(env.admin.post("clusters", json={"name": None}), 422, field="name")
    assert_error(env.admin.post("clusters", json={"name": "a" * 64}), 422, field="name")
    assert_error(env.admin.get("credentials", params={"limit": 0}), 422, field="limit")
    assert_error(env.admin.get("credentials", params={"limit": 501}), 422, field="limit")
    assert_error(env.admin.get("credentials", params={"offset": -1}), 422, field="offset")
    assert_error(env.admin.get("audit", params={"since": "yesterday"}), 422, field="since")


def test_unknown_body_fields_are_422(env: Env) -> None:
    env.cluster("c1")
    env.project("p1")
    cred = env.cred("web")
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "login", {"username": "admin", "password": "whatever1", "otp": "1"}),
        ("POST", "users", {"username": "u1", "password": "long-enough", "role": "x"}),
        ("POST", "tokens", {"name": "t", "scopes": ["all"]}),
        ("POST", "clusters", {"name": "c2", "region": "eu"}),
        ("PATCH", "clusters/c1", {"descripton": "typo"}),
        ("POST", "projects", {"name": "p2", "cluster": "c1", "owner": "x"}),
        ("PATCH", "projects/p1", {"cluster": "c2"}),
        ("PUT", "clusters/c1/namespaces/ns", {"project": None, "labels": {}}),
        ("PUT", "projects/p1/members/admin", {"role": "owner", "until": "x"}),
        (
            "POST",
            "credentials",
            {
                "name": "x",
                "cluster": "c1",
                "scope": "cluster",
                "server": "r.example.com",
                "username": "u",
                "password": "pw-unknown-field-1",
                "insecure": True,
            },
        ),
        ("PATCH", f"credentials/{cred['id']}", {"scope": "project"}),
        ("PATCH", f"credentials/{cred['id']}", {"provider": "quay"}),
        ("PUT", "clusters/c1/policy", {"allow": ["docker.io"]}),
        ("PUT", "projects/p1/policy", {"mirror": "m.example.com"}),
    ]
    unknown = {
        "login": "otp",
        "users": "role",
        "tokens": "scopes",
        "clusters": "region",
        "clusters/c1": "descripton",
        "projects": "owner",
        "projects/p1": "cluster",
        "clusters/c1/namespaces/ns": "labels",
        "projects/p1/members/admin": "until",
        "credentials": "insecure",
        "clusters/c1/policy": "allow",
        "projects/p1/policy": "mirror",
    }
    for method, path, body in cases:
        r = env.admin.call(method, path, json=body)
        want = unknown.get(path) or next(iter(set(body)))
        assert_error(r, 422, "invalid", field=want)
    # None of them changed anything.
    assert "c2" not in [c["name"] for c in env.admin.ok("GET", "clusters")["items"]]
    assert env.admin.ok("GET", "credentials")["total"] == 1
    assert env.admin.ok("GET", f"credentials/{cred['id']}")["scope"] == "cluster"


def _body_of(size: int) -> bytes:
    """A valid cluster-create body of exactly `size` bytes."""
    skeleton = json.dumps({"name": "big", "description": ""}).encode()
    body = json.dumps({"name": "big", "description": "d" * (size - len(skeleton))}).encode()
    assert len(body) == size
    return body


@pytest.mark.settings(max_body_bytes=LIMIT)
def test_body_at_the_limit_is_accepted(env: Env) -> None:
    r = env.admin.post(
        "clusters", content=_body_of(LIMIT), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "big"


@pytest.mark.settings(max_body_bytes=LIMIT)
def test_body_over_the_limit_with_content_length_is_413(env: Env) -> None:
    r = env.admin.post(
        "clusters", content=_body_of(LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert_error(r, 413, "too_large", field=None, message=str(LIMIT))
    assert env.admin.ok("GET", "clusters")["items"] == []


@pytest.mark.settings(max_body_bytes=LIMIT)
def test_body_over_the_limit_without_content_length_is_413(env: Env) -> None:
    body = _body_of(LIMIT * 4)

    def stream() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = env.admin.post("clusters", content=stream(), headers={"Content-Type": "application/json"})
    sent = {k.lower(): v for k, v in r.request.headers.items()}
    assert "content-length" not in sent and sent.get("transfer-encoding") == "chunked"
    assert_error(r, 413, "too_large", field=None)
    assert env.admin.ok("GET", "clusters")["items"] == []


@pytest.mark.settings(max_body_bytes=LIMIT)
def test_body_over_the_limit_in_many_asgi_chunks_is_413(env: Env) -> None:
    """The same, at the ASGI level: several http.request messages, none of them too big."""
    body = _body_of(LIMIT * 3)
    chunks = [body[i : i + 700] for i in range(0, len(body), 700)]

    async def run() -> tuple[int, bytes]:
        queue = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> Any:
            if queue:
                return queue.pop(0)
            await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/v1/clusters",
            "raw_path": b"/api/v1/clusters",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {ADMIN_TOKEN}".encode()),
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
            "state": {},
        }
        await env.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], payload

    status, payload = run_async(run())
    assert status == 413, payload
    assert json.loads(payload)["error"]["code"] == "too_large"
    assert env.admin.ok("GET", "clusters")["items"] == []


def test_nul_characters_are_refused_everywhere(env: Env) -> None:
    """PostgreSQL cannot store NUL in text; every input refuses it alike, on both stores."""
    for method, path, kw in (
        ("GET", "clusters/%00", {}),
        ("GET", "credentials", {"params": {"q": "\x00"}}),
        ("GET", "audit", {"params": {"user": "a\x00b"}}),
    ):
        assert_error(env.admin.call(method, path, **kw), 422, "invalid")
    r = env.admin.post("clusters", json={"name": "c2", "description": "a\x00b"})
    assert_error(r, 422, "invalid", field="description")
    r = env.admin.post("login", json={"username": "\x00", "password": "x"}, token=None)
    assert_error(r, 422, "invalid", field="username")
    assert "c2" not in [c["name"] for c in env.admin.ok("GET", "clusters")["items"]]


def test_audit_since_outside_the_storable_range_is_422(env: Env) -> None:
    for since in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
        r = env.admin.get("audit", params={"since": since})
        assert_error(r, 422, "invalid", field="since")
    # A time without a zone is UTC.
    assert env.admin.ok("GET", "audit", params={"since": "0001-01-01T00:00:00"})["total"] > 0


def test_an_unexpected_error_is_logged_with_its_traceback_and_not_answered(
    env: Env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's traceback is for the server's log; the API and the pages answer it generically."""

    def broken(*_: Any, **__: Any) -> NoReturn:
        raise RuntimeError("a bug's own words: marker-7Kq2")

    monkeypatch.setattr(clusters, "list_clusters", broken)
    monkeypatch.setattr(security, "new_login_csrf", broken)
    caplog.set_level(logging.ERROR, logger="pullkeeper.api")
    answered = {
        "api": env.admin.get("clusters"),
        "page": env.client.get("/login", headers={"Accept": "text/html"}),
    }
    assert_error(answered["api"], 500, "internal", field=None)
    assert answered["page"].status_code == 500
    assert "Something went wrong on the server" in answered["page"].text
    for where, response in answered.items():
        for hint in ("marker-7Kq2", "RuntimeError", "Traceback", "broken"):
            assert hint not in response.text, (where, hint)

    logged = [r for r in caplog.records if r.name == "pullkeeper.api"]
    assert [r.getMessage() for r in logged] == [
        "unexpected error: RuntimeError in GET /api/v1/clusters",
        "unexpected error: RuntimeError in GET /login",
    ]
    for record in logged:
        text = logging.Formatter().format(record)
        assert "Traceback (most recent call last)" in text, text
        assert "in broken" in text and "RuntimeError: a bug's own words: marker-7Kq2" in text


def test_the_openapi_document_describes_the_errors_the_api_gives(env: Env) -> None:
    """The document's 422 answers are the API's envelope (a real 422 validates against it),
    not the framework's {"detail": [...]}; no answer keeps the framework's default words."""
    document = env.anon.ok("GET", "openapi.json")
    error = document["components"]["schemas"]["Error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    r = env.admin.post("clusters", json={"name": 7})
    assert r.status_code == 422
    jsonschema.validate(r.json(), error)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": [{"msg": "x"}]}, error)
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                assert answer["description"] != "Successful Response", (method, path, status)
                if status == "422":
                    assert answer["content"]["application/json"]["schema"] == ref
