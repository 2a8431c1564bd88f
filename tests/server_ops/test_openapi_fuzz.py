"""Schemathesis against a real `pullkeeper serve` (SQLite), from its live OpenAPI document,
and against its webhook listener (TLS, with a client certificate), from the AdmissionReview
contract written out below.

Every operation is fuzzed twice, as the admin and without a valid token, with
a bounded number of examples (schemathesis phases: examples, coverage,
fuzzing). Whatever is sent, no answer may be a 5xx, every error must be the
API's envelope `{"error": {"code", "message", "field"}}`, and without a valid
token nothing may succeed. Path and query parameters naming a cluster,
project, namespace, credential, user or token are drawn either as generated
or as one of the objects seeded before the run, so operations on ids get past
the 404 too; when a request removed or renamed a seeded object, a fresh set is
seeded for the examples that follow.

The webhook's reviews (its coverage phase sends fields of every wrong type) are
answered with an AdmissionReview for their uid, or an error envelope; their
namespace and images are drawn as generated or from the seeded ones, so
reviews reach the seeded cluster's Secrets and its policy's denials.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from pullkeeper.app import openapi_document
from tests.admission.pki import CA, Issued

from . import AUTH, Serve, client, ok, seed_basics

MAX_EXAMPLES = 20
# Coverage cases are deterministic and not bounded by max_examples; they run once per operation.
PHASES = {"examples": {}, "coverage": {}, "fuzzing": {}, "stateful": {"enabled": False}}

# Values the fuzzer may put into parameters of these names, besides what it generates.
KNOWN: dict[str, list[str]] = {}
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
    # A policy the webhook's reviews run into: denials (and their audit records), rewrites.
    policy = {"allowlist": ["*.registry.example.com"], "default_registry": REGISTRIES[0]}
    ok(c.put(f"/clusters/{cluster['id']}/policy", json=policy))
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
        # One (argon2-hashed) user serves every set, made again when the run deleted it.
        self.bob = self._bob()
        _seed(self.client, self.generation, self.bob)

    def _bob(self) -> dict[str, Any]:
        user = {"username": "bob-fz", "password": "bobs-password"}
        made: dict[str, Any] = ok(self.client.post("/users", json=user), 201)
        return made

    def refresh_after(self, method: str, path: str, status: int) -> None:
        # A successful DELETE, PATCH or PUT may have removed, renamed or moved a seeded object,
        # and a deactivation may have left the webhook's run no credential to give.
        changed = method in ("DELETE", "PATCH", "PUT") or path.endswith("/deactivate")
        if changed and 200 <= status < 300:
            self.generation += 1
            if method == "DELETE" and path.endswith("/users/{user}"):
                self.bob = self._bob()
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
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Issued]:
    """The CA the webhook listener requires callers' certificates of, and the caller's."""
    ca = CA(tmp_path_factory.mktemp("callers"), "kube-apiserver callers")
    return ca.cert, ca.client("kube-apiserver")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, apiserver: tuple[Path, Issued]
) -> Iterator[Serve]:
    required = ["--webhook-client-ca", str(apiserver[0])]
    serve = Serve(tmp_path_factory.mktemp("fuzz") / "data", webhook=True, extra=required)
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


class Answers:
    """The kinds of answer one operation's run was given, by count."""

    def __init__(self) -> None:
        self.label = ""
        self.kinds: dict[str, int] = {}

    def add(self, case: schemathesis.Case, kind: str) -> None:
        self.label = case.operation.label
        self.kinds[kind] = self.kinds.get(kind, 0) + 1


@pytest.fixture
def answers() -> Iterator[Answers]:
    """What one operation's run was answered; at its end, the run must have been given every
    kind of answer REACHED names for the operation, so it was not vacuous. (Schemathesis makes
    a test per operation, and the fixture lives as long as one test: all its examples. Checked
    here, not by a test after the runs, so that it holds in any order and for any selection.)"""
    seen = Answers()
    yield seen
    missed = sorted(REACHED.get(seen.label, set()) - set(seen.kinds))
    assert not missed, f"{seen.label} never answered {missed}; answers seen: {seen.kinds}"


def status_kind(status: int) -> str:
    return "2xx" if 200 <= status < 300 else str(status)


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


# The tests are generated at collection, before the server fixture exists, so the document
# comes from the in-process app; test_the_live_document_is_the_one_fuzzed checks it is the
# same document the running server serves at /api/v1/openapi.json. (A schema loaded from a
# fixture, schemathesis.pytest.from_fixture, fails under pytest 9.2: 'Function' object has
# no attribute '_nodeid'.)
DOCUMENT = openapi_document()


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
    if context.operation.path.startswith("/admission/"):
        return _review_with_known(body)
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


# ----------------------------------------------------------------- the webhook listener

# Registries of the seeded credentials (namespace.registry.example.com, ...), the policy's
# default registry, and images that are allowed, denied, rewritten or none of these.
REGISTRIES = ["cluster.registry.example.com", "namespace.registry.example.com"]
IMAGES = [
    f"{REGISTRIES[0]}/team/app:1",
    f"{REGISTRIES[1]}/team/app@sha256:{'c' * 64}",
    "nginx",
    "quay.io/team/app:latest",
    "quay.io.evil.com/app:1",
    "Not An Image",
]


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _object(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_CONTAINER = _object(
    {
        "name": _string(),
        "image": _string(),
        "imagePullPolicy": _string(enum=["Always", "IfNotPresent", "Never"]),
    },
    "name",
    "image",
)
_POD_SPEC = _object(
    {
        "containers": {**_array(_CONTAINER), "minItems": 1},
        "initContainers": _array(_CONTAINER),
        "ephemeralContainers": _array(_CONTAINER),
        "imagePullSecrets": _array(_object({"name": _string()})),
    },
    "containers",
)
_META = _object(
    {
        "name": _string(),
        "generateName": _string(),
        "annotations": {"type": "object", "additionalProperties": _string()},
    }
)
_TEMPLATE = _object({"metadata": _META, "spec": _POD_SPEC})
# admission.k8s.io/v1 AdmissionReview, as far as the webhook reads it; the object is a Pod's
# or a workload's (template, CronJob's jobTemplate), with the fields of both.
ADMISSION_REVIEW = _object(
    {
        "apiVersion": _string(enum=["admission.k8s.io/v1"]),
        "kind": _string(enum=["AdmissionReview"]),
        "request": _object(
            {
                "uid": _string(),
                "kind": _object(
                    {
                        "group": _string(),
                        "version": _string(),
                        "kind": _string(enum=["Pod", "Deployment", "Job", "CronJob", "ConfigMap"]),
                    },
                    "kind",
                ),
                "namespace": _string(),
                "name": _string(),
                "operation": _string(enum=["CREATE", "UPDATE", "DELETE", "CONNECT"]),
                "subResource": _string(),
                "userInfo": _object({"username": _string(), "groups": _array(_string())}),
                "object": _object(
                    {
                        "apiVersion": _string(),
                        "kind": _string(),
                        "metadata": _META,
                        "spec": _object(
                            {
                                **_POD_SPEC["properties"],
                                "template": _TEMPLATE,
                                "jobTemplate": _object({"spec": _object({"template": _TEMPLATE})}),
                            }
                        ),
                    },
                    "metadata",
                    "spec",
                ),
                "dryRun": {"type": "boolean"},
            },
            "uid",
            "kind",
            "operation",
            "namespace",
            "object",
        ),
    },
    "apiVersion",
    "kind",
    "request",
)
_ERROR = _object({"error": _object({"code": _string(), "message": _string(), "field": _string()})})


def _webhook_operation(with_cluster: bool) -> dict[str, Any]:
    json_of = {"application/json": {"schema": ADMISSION_REVIEW}}
    operation: dict[str, Any] = {
        "requestBody": {"required": True, "content": json_of},
        "responses": {
            "200": {"description": "the answer", "content": json_of},
            "400": {
                "description": "not a review",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "413": {
                "description": "too large",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if with_cluster:
        operation["parameters"] = [
            {"name": "cluster", "in": "path", "required": True, "schema": _string()}
        ]
    return {"post": operation}


WEBHOOK_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "pullkeeper admission webhook", "version": "1"},
    "paths": {
        f"/admission/{webhook}{suffix}": _webhook_operation(bool(suffix))
        for webhook in ("mutate", "validate")
        for suffix in ("", "/{cluster}")
    },
}
# A review costs the server about a millisecond: the webhook gets more examples than the API.
WEBHOOK_EXAMPLES = 100
webhook_schema = schemathesis.openapi.from_dict(
    WEBHOOK_DOCUMENT,
    config=schemathesis.Config.from_dict(
        {"generation": {"max-examples": WEBHOOK_EXAMPLES}, "phases": PHASES}
    ),
)
# What each operation's run must have been answered at least once (see `answers`): the admin
# run got past the 404 on real objects; the webhook's reviews reached decisions, patched and
# denied by the seeded cluster's policy, and malformed ones were refused as no review. (The
# webhook paths without a cluster decide only while the store holds exactly one cluster, which
# the admin run changes; whether the generation reaches a pod mistyped just below a valid
# review varies from run to run: test_malformed_input.py sends those every time.)
REACHED: dict[str, set[str]] = {
    **{label: {"2xx"} for label in MUST_SUCCEED},
    "POST /admission/mutate/{cluster}": {"patched", "400"},
    "POST /admission/validate/{cluster}": {"denied 403", "400"},
    "POST /admission/mutate": {"400"},
    "POST /admission/validate": {"400"},
}


POD_CREATE = {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE"}


def _known_review(
    body: dict[str, Any], namespace: str | None, image: str | None, pod_create: bool
) -> Any:
    request = dict(body["request"])
    if namespace is not None:
        request["namespace"] = namespace
    if pod_create:  # what the API server sends most: a Pod's creation
        request.update(POD_CREATE)
        request.pop("subResource", None)
    obj = request.get("object")
    spec = obj.get("spec") if isinstance(obj, dict) else None
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if image is not None and isinstance(containers, list) and containers:
        first = containers[0]
        if isinstance(first, dict):
            new_spec = {**spec, "containers": [{**first, "image": image}, *containers[1:]]}
            request["object"] = {**obj, "spec": new_spec}
    return {**body, "request": request}


def _review_with_known(body: Any) -> Any:
    """The generated review, or with a seeded namespace, a telling image, or as a Pod's
    creation: so that reviews get past the pass-throughs to the decisions."""
    if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
        return st.just(body)
    namespaces = st.sampled_from([None, *KNOWN.get("namespace", []) * 3])
    images = st.sampled_from([None, *IMAGES])
    return st.tuples(namespaces, images, st.sampled_from([False, True, True])).map(
        lambda t: _known_review(body, *t)
    )


def review_or_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """An error envelope, or an AdmissionReview answering the request's uid."""
    if response.status_code >= 400:
        error_envelope(ctx, response, case)
        return
    assert response.status_code == 200, response.status_code
    doc = json.loads(response.content)
    assert (doc["apiVersion"], doc["kind"]) == ("admission.k8s.io/v1", "AdmissionReview"), doc
    answer = doc["response"]
    assert isinstance(case.body, dict), case.body
    assert answer["uid"] == case.body["request"]["uid"], (answer, case.body)
    assert isinstance(answer["allowed"], bool), answer
    if not answer["allowed"]:
        status = answer["status"]
        assert status["code"] in (400, 403) and isinstance(status["message"], str), answer
    if "patch" in answer:
        assert answer["patchType"] == "JSONPatch", answer
        assert isinstance(json.loads(base64.b64decode(answer["patch"])), list), answer


def review_kind(response: schemathesis.Response) -> str:
    """What a checked webhook answer is: patched, allowed, denied CODE, or an error's status."""
    if response.status_code >= 400:
        return str(response.status_code)
    answer = json.loads(response.content)["response"]
    if "patch" in answer:
        return "patched"
    return "allowed" if answer["allowed"] else f"denied {answer['status']['code']}"


for loaded in (admin_schema, anonymous_schema, webhook_schema):
    for hook in (flatmap_path_parameters, flatmap_query, flatmap_body):
        loaded.hook(hook)


# Headers that frame the HTTP message are the client's: a generated Content-Length that does
# not describe the body is refused by the HTTP server (uvicorn's plain-text 400) before any
# request reaches the API, so no answer of the API's could be checked.
FRAMING = ("content-length", "transfer-encoding")


def framed_by_the_client(case: schemathesis.Case) -> schemathesis.Case:
    """`case` without generated framing headers."""
    for name in [n for n in case.headers or {} if n.lower() in FRAMING]:
        del case.headers[name]
    return case


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
def test_as_admin(case: schemathesis.Case, server: Serve, seeds: Seeds, answers: Answers) -> None:
    response = framed_by_the_client(case).call(base_url=server.url, headers=AUTH, timeout=30)
    answers.add(case, status_kind(response.status_code))
    case.validate_response(response, checks=[not_a_server_error, error_envelope], headers=AUTH)
    seeds.refresh_after(case.method.upper(), case.path, response.status_code)


@anonymous_schema.parametrize()
@FUZZ
def test_without_a_valid_token(case: schemathesis.Case, server: Serve, seeds: Seeds) -> None:
    # The generated Authorization header (absent, malformed or a random bearer) is sent as is.
    headers = dict(case.headers or {})
    auth = headers.get("Authorization", "")
    assert not auth.endswith(AUTH["Authorization"].split()[1]), "the admin token was generated"
    response = framed_by_the_client(case).call(base_url=server.url, timeout=30)
    case.validate_response(
        response, checks=[not_a_server_error, error_envelope, nothing_without_a_token]
    )


@webhook_schema.parametrize()
@settings(FUZZ, max_examples=WEBHOOK_EXAMPLES)
def test_the_webhook_listener(
    case: schemathesis.Case,
    server: Serve,
    seeds: Seeds,
    apiserver: tuple[Path, Issued],
    answers: Answers,
) -> None:
    response = framed_by_the_client(case).call(
        base_url=server.webhook_url,
        verify=str(server.webhook_ca),
        cert=tuple(str(p) for p in apiserver[1].pair),
        timeout=30,
    )
    case.validate_response(response, checks=[not_a_server_error, review_or_error])
    answers.add(case, review_kind(response))


def test_every_operation_held_to_its_answers_is_fuzzed() -> None:
    """A label in REACHED that names no fuzzed operation would hold nothing to anything."""
    fuzzed = {
        result.ok().label
        for schema in (admin_schema, webhook_schema)
        for result in schema.get_all_operations()
    }
    assert set(REACHED) <= fuzzed, set(REACHED) - fuzzed


def test_the_live_document_is_the_one_fuzzed(server: Serve) -> None:
    live = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert live.status_code == 200
    assert live.json() == DOCUMENT


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
