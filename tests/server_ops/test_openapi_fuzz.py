"""Schemathesis against a real `pullkeeper serve` (SQLite), from its live OpenAPI document.

Every operation is fuzzed twice, as the admin and without a valid token, with
a bounded number of examples (schemathesis phases: examples, coverage,
fuzzing). Whatever is sent, no answer may be a 5xx, every error must be the
API's envelope `{"error": {"code", "message", "field"}}`, and without a valid
token nothing may succeed. Path and query parameters naming a cluster,
project, namespace, credential, user or token are drawn either as generated
or as one of the objects seeded before the run, so operations on ids get past
the 404 too; when a request removed or renamed a seeded object, a fresh set is
seeded for the examples that follow.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from pullkeeper.api.app import create_app
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings

from . import AUTH, Serve, client, ok, seed_basics

MAX_EXAMPLES = 20
# Coverage cases are deterministic and not bounded by max_examples; they run once per operation.
PHASES = {"examples": {}, "coverage": {}, "fuzzing": {}, "stateful": {"enabled": False}}

# Values the fuzzer may put into parameters of these names, besides what it generates.
KNOWN: dict[str, list[str]] = {}
# "METHOD /path" -> every status the admin run saw for it.
SEEN: dict[str, set[int]] = {}
# Operations whose admin run must have succeeded at least once, so ids were really reached.
MUST_SUCCEED = (
    "GET /api/v1/clusters/{cluster}",
    "GET /api/v1/projects/{project}",
    "GET /api/v1/credentials/{credential_id}",
    "GET /api/v1/credentials/{credential_id}/dockerconfigjson",
    "DELETE /api/v1/credentials/{credential_id}",
    "GET /api/v1/namespaces/{namespace}/effective-credentials",
    "GET /api/v1/clusters/{cluster}/namespaces",
    "GET /api/v1/credentials",
    "GET /api/v1/audit",
    # Not POST/PATCH /credentials: their rules (provider address, the password again)
    # make a random body valid only by luck; tests/server covers their successes.
    "POST /api/v1/projects",
    "PUT /api/v1/projects/{project}/members/{user}",
)


def _seed(c: httpx.Client, generation: int, bob: dict[str, Any]) -> None:
    seeded = seed_basics(c, f"-fz{generation}")
    cluster, project, ns = seeded["cluster"], seeded["project"], seeded["namespace"]
    ok(c.put(f"/projects/{project['id']}/members/{bob['username']}", json={"role": "owner"}))
    token = ok(c.post("/tokens", json={"name": f"fuzz-{generation}"}), 201)
    KNOWN.clear()
    KNOWN.update(
        {
            "cluster": [cluster["id"], cluster["name"]],
            "project": [project["id"], project["name"]],
            "name": [ns["name"]],
            "namespace": [ns["name"]],
            "credential_id": [cr["id"] for cr in seeded["credentials"]],
            "user": [bob["username"], bob["id"], "admin"],
            # Never the admin's own token: revoking it would end the authenticated run.
            "token_id": [token["id"]],
        }
    )


class Seeds:
    def __init__(self, server: Serve) -> None:
        self.client = client(server.url)
        self.generation = 0
        # Users cannot be deleted through the API, so one (argon2-hashed) user serves every set.
        user = {"username": "bob-fz", "password": "bobs-password"}
        self.bob = ok(self.client.post("/users", json=user), 201)
        _seed(self.client, self.generation, self.bob)

    def refresh_after(self, method: str, status: int) -> None:
        # A successful DELETE, PATCH or PUT may have removed, renamed or moved a seeded object.
        if method in ("DELETE", "PATCH", "PUT") and 200 <= status < 300:
            self.generation += 1
            _seed(self.client, self.generation, self.bob)


# Plausible values for body fields, so creates and edits can succeed, not only fail validation.
BODY_VALUES: dict[str, list[Any]] = {
    "scope": ["namespace", "project", "cluster"],
    "provider": ["custom", "dockerhub", "quay", "ghcr", "harbor"],
    "server": ["registry.example.com", "registry.example.com:5000"],
    "username": ["robot", "carol-fz"],
    "password": ["a-good-password", "another-password"],
    "role": ["owner", "member", "viewer"],
    "access": ["kubeconfig", "in-cluster"],
    "name": ["fuzzed", "fuzzed-2"],
    "allowlist": [["registry.example.com", "*.example.org"]],
    "default_registry": ["registry.example.com"],
}


def _with_known(
    values: dict[str, Any], known: dict[str, list[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Each value as generated, or one of the known values for its name."""
    if not isinstance(values, dict) or not values:
        return st.just(values)
    return st.fixed_dictionaries(
        {
            # Known values weigh three times the generated one: most draws then reach a real
            # object, and the rest still probe what a wrong value does.
            key: st.sampled_from([value, *known[key] * 3]) if known.get(key) else st.just(value)
            for key, value in values.items()
        }
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    serve = Serve(tmp_path_factory.mktemp("fuzz") / "data")
    serve.start()
    try:
        yield serve
    finally:
        serve.stop()  # its exit status is test_restart_safety's business
        log = serve.log()
    # The catch-all handler logs "unexpected error"; uvicorn logs tracebacks. Neither may occur.
    assert "unexpected error" not in log and "Traceback" not in log, log


@pytest.fixture(scope="module")
def seeds(server: Serve) -> Seeds:
    return Seeds(server)


def error_envelope(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """An error answer is exactly {"error": {"code": str, "message": str, "field": str|null}}."""
    if response.status_code < 400:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"{response.status_code} body is not JSON: {response.text!r}"
        ) from None
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, f"error body keys {sorted(body)}: {body}"
    err = body["error"]
    assert isinstance(err, dict), body
    assert set(err) == {"code", "message", "field"}, f"error keys {sorted(err)}: {body}"
    assert isinstance(err["code"], str) and err["code"], body
    assert isinstance(err["message"], str) and err["message"], body
    assert err["field"] is None or isinstance(err["field"], str), body
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), (
        response.headers
    )


def nothing_without_a_token(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Without a valid token nothing succeeds, but a login with a password that was set."""
    if case.operation.label == "POST /api/v1/login" and response.status_code == 201:
        # The admin run may have created a user with a password from BODY_VALUES.
        assert isinstance(case.body, dict), case.body
        assert case.body.get("password") in BODY_VALUES["password"], case.body
        return
    assert not 200 <= response.status_code < 300, (
        f"{case.method} {case.formatted_path} succeeded without a valid token: "
        f"{response.status_code} {response.text[:500]}"
    )


def _openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app `pullkeeper serve` runs, built in-process."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Settings(data=Path(tmp)))
        try:
            return create_app(server).openapi()
        finally:
            server.close()


# The tests are generated at collection, before the server fixture exists, so the document
# comes from the in-process app; test_the_live_document_is_the_one_fuzzed checks it is the
# same document the running server serves at /api/v1/openapi.json. (A schema loaded from a
# fixture, schemathesis.pytest.from_fixture, fails under pytest 9.2: 'Function' object has
# no attribute '_nodeid'.)
DOCUMENT = _openapi_document()


def _schema(*, security_parameters: bool) -> Any:
    generation = {"max-examples": MAX_EXAMPLES, "with-security-parameters": security_parameters}
    config = {"generation": generation, "phases": PHASES}
    return schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(config))


# As the admin, the Authorization header is always the admin's: negative cases that would
# drop or mangle it are left to the run without a token, where they are the whole point.
admin_schema = _schema(security_parameters=False)
anonymous_schema = _schema(security_parameters=True)


def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    return _with_known(path_parameters, KNOWN)


def flatmap_query(context: Any, query: dict[str, Any]) -> Any:
    return _with_known(query, KNOWN)


def _valid_credential(body: dict[str, Any], scope: str, n: int) -> dict[str, Any]:
    """A create that passes every rule, carrying the generated free-text fields."""
    valid = {
        "name": f"fuzzed-{n}",
        "cluster": KNOWN["cluster"][1],
        "scope": scope,
        "provider": "custom",
        "server": "registry.example.com",
        "username": "robot",
        "password": "a-good-password",
    }
    if scope == "namespace":
        valid["namespace"] = KNOWN["namespace"][0]
    if scope == "project":
        valid["project"] = KNOWN["project"][1]
    for key in ("username", "password", "email", "description"):
        if isinstance(body.get(key), str) and body[key]:
            valid[key] = body[key]
    return valid


def flatmap_body(context: Any, body: Any) -> Any:
    known = BODY_VALUES | {k: KNOWN[k] for k in ("cluster", "project", "namespace") if k in KNOWN}
    mixed = _with_known(body, known)
    if context.operation.label == "PUT /api/v1/projects/{project}/members/{user}":
        return st.one_of(mixed, st.sampled_from(BODY_VALUES["role"]).map(lambda r: {"role": r}))
    if context.operation.label == "POST /api/v1/credentials" and isinstance(body, dict):
        # All of name, scope, cluster, namespace/project, provider and server must fit
        # together for a 201; random draws rarely manage that in a bounded run.
        scopes = st.sampled_from(["namespace", "project", "cluster"])
        valid = st.tuples(scopes, st.integers(0, 10**6)).map(lambda t: _valid_credential(body, *t))
        return st.one_of(mixed, valid)
    return mixed


for loaded in (admin_schema, anonymous_schema):
    for hook in (flatmap_path_parameters, flatmap_query, flatmap_body):
        loaded.hook(hook)


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    # No shrinking: a failure is reported as found, which keeps a failing run short.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    suppress_health_check=list(HealthCheck),
)


@admin_schema.parametrize()
@FUZZ
def test_as_admin(case: schemathesis.Case, server: Serve, seeds: Seeds) -> None:
    response = case.call(base_url=server.url, headers=AUTH, timeout=30)
    SEEN.setdefault(case.operation.label, set()).add(response.status_code)
    case.validate_response(response, checks=[not_a_server_error, error_envelope], headers=AUTH)
    seeds.refresh_after(case.method.upper(), response.status_code)


@anonymous_schema.parametrize()
@FUZZ
def test_without_a_valid_token(case: schemathesis.Case, server: Serve, seeds: Seeds) -> None:
    # The generated Authorization header (absent, malformed or a random bearer) is sent as is.
    headers = dict(case.headers or {})
    auth = headers.get("Authorization", "")
    assert not auth.endswith(AUTH["Authorization"].split()[1]), "the admin token was generated"
    response = case.call(base_url=server.url, timeout=30)
    case.validate_response(
        response, checks=[not_a_server_error, error_envelope, nothing_without_a_token]
    )


def test_the_live_document_is_the_one_fuzzed(server: Serve) -> None:
    live = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert live.status_code == 200
    assert live.json() == DOCUMENT


def test_the_admin_run_reached_real_objects() -> None:
    """The run above was not vacuous: operations on seeded ids got past the 404."""
    if not SEEN:
        pytest.skip("test_as_admin did not run in this session")
    print("\nstatuses seen as admin:")
    for label in sorted(SEEN):
        print(f"  {label:64} {sorted(SEEN[label])}")
    missed = [label for label in MUST_SUCCEED if not any(200 <= s < 300 for s in SEEN[label])]
    assert not missed, f"never a 2xx for {missed}; seen {SEEN}"


@pytest.mark.parametrize(
    "since", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00"]
)
def test_audit_since_at_the_edges_of_time_is_not_a_500(
    tmp_path_factory: pytest.TempPathFactory, since: str
) -> None:
    # Found by hand next to the fuzzing; the generated date-times rarely come this close.
    # A server of its own, so the fuzzed server's log stays free of "unexpected error".
    serve = Serve(tmp_path_factory.mktemp("since") / "data")
    serve.start()
    try:
        r = httpx.get(f"{serve.url}/api/v1/audit", params={"since": since}, headers=AUTH)
    finally:
        serve.stop()
    assert r.status_code < 500, f"GET /api/v1/audit?since={since} -> {r.status_code} {r.text}"
