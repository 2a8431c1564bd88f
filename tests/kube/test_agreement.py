"""Where the fake and the real API server once disagreed, the same request against both: the
real server is right, and these pin the fake to it."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.real import RealCluster

Call = Callable[..., httpx.Response]


@pytest.fixture(params=["fake", "real"])
def call(request: pytest.FixtureRequest) -> Iterator[Call]:
    """`call(method, path, json=...)` on the fake or on the real API server, as an admin."""
    if request.param == "real":
        real: RealCluster = request.getfixturevalue("real_kube")
        yield real.call
        return
    with FakeApiServer() as fake, httpx.Client(base_url=fake.url, timeout=10) as client:
        headers = {"Authorization": f"Bearer {fake.token}"} if fake.token else {}

        def on_fake(method: str, path: str, **kw: Any) -> httpx.Response:
            return client.request(method, path, headers={**headers, **kw.pop("headers", {})}, **kw)

        yield on_fake


def _secret(config: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pull"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()},
    }


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (b"[]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        (b"1", "json: cannot unmarshal number into Go value of type map[string]interface {}"),
        (b"NaN", "invalid character 'N' looking for beginning of value"),
        (b"{}", None),
        (b'{"auths": []}', None),  # only the top level must be an object
    ],
)
def test_a_dockerconfigjson_must_be_a_json_object(
    call: Call, config: bytes, error: str | None
) -> None:
    answer = call("POST", "/api/v1/namespaces/default/secrets?dryRun=All", json=_secret(config))
    if error is None:
        assert answer.status_code == 201, answer.text
        return
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["message"] == (
        f'Secret "pull" is invalid: data[.dockerconfigjson]: Invalid value: '
        f'"<secret contents redacted>": {error}'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "<secret contents redacted>": {error}',
            "field": "data[.dockerconfigjson]",
        }
    ]


def test_a_json_patch_that_does_not_apply_is_422_without_details(call: Call) -> None:
    made = call("POST", "/api/v1/namespaces/default/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "patched"}, "data": {},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    path = "/api/v1/namespaces/default/configmaps/patched"
    headers = {"Content-Type": "application/json-patch+json"}
    try:
        for patch in (
            [{"op": "test", "path": "/metadata/resourceVersion", "value": "no-such-version"}],
            [{"op": "add", "path": "/data/missing/deeper", "value": "x"}],
            [{"op": "remove", "path": "/data/missing"}],
            [{"op": "remove", "path": ""}],
            [{"op": "frob", "path": "/data"}],
            [{"op": "add", "value": "x"}],
        ):
            answer = call("PATCH", path, json=patch, headers=headers)
            assert answer.status_code == 422, answer.text
            body = answer.json()
            assert body["reason"] == "Invalid"
            assert body["message"] == (
                "the server rejected our request due to an error in our request"
            )
            assert body["details"] == {}
    finally:
        call("DELETE", path)


def test_a_json_patch_reads_array_indices_as_go_does(call: Call) -> None:
    """ "/finalizers/01" is index 1 to the real server (strconv.Atoi), though RFC 6901 forbids
    the leading zero."""
    made = call("POST", "/api/v1/namespaces/default/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "indexed", "finalizers": ["example.com/a", "example.com/b"]},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    path = "/api/v1/namespaces/default/configmaps/indexed"
    headers = {"Content-Type": "application/json-patch+json"}
    patch = [{"op": "remove", "path": "/metadata/finalizers/01"}]
    try:
        answer = call("PATCH", path, json=patch, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["metadata"]["finalizers"] == ["example.com/a"]
    finally:
        call(
            "PATCH", path, json=[{"op": "remove", "path": "/metadata/finalizers"}], headers=headers
        )
        call("DELETE", path)


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"op": "add"}, "cannot unmarshal object into Go value of type []handlers.jsonPatchOp"),
        (["add"], "cannot unmarshal string into Go value of type handlers.jsonPatchOp"),
        (
            [{"op": "add", "path": 1, "value": "x"}],
            "cannot unmarshal number into Go struct field jsonPatchOp.path of type string",
        ),
        (None, None),  # no operations
    ],
)
def test_a_json_patch_is_decoded_before_it_is_applied(
    call: Call, patch: object, error: str | None
) -> None:
    made = call("POST", "/api/v1/namespaces/default/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "decoded"}, "data": {},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    path = "/api/v1/namespaces/default/configmaps/decoded"
    headers = {"Content-Type": "application/json-patch+json"}
    try:
        answer = call("PATCH", path, content=json.dumps(patch), headers=headers)
    finally:
        call("DELETE", path)
    if error is None:
        assert answer.status_code == 200, answer.text
        return
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["reason"], body["message"]) == (
        "BadRequest",
        f"error decoding patch: json: {error}",
    )


def test_a_deleted_namespace_is_terminating_and_refuses_new_content(call: Call) -> None:
    """Pinned from kube-apiserver v1.34: the delete answers 200 with the namespace Terminating,
    a second delete the same, a create in it 403 NamespaceTerminating; then it goes."""
    made = call("POST", "/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "leaving"},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["spec"] == {"finalizers": ["kubernetes"]}
    for _ in range(2):
        deleted = call("DELETE", "/api/v1/namespaces/leaving")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["status"] == {"phase": "Terminating"}
        assert deleted.json()["metadata"]["deletionTimestamp"]
    refused = call("POST", "/api/v1/namespaces/leaving/secrets", json={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late"},
    })  # fmt: skip
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert (body["reason"], body["message"]) == (
        "Forbidden",
        'secrets "late" is forbidden: unable to create new content in namespace leaving '
        "because it is being terminated",
    )
    assert body["details"] == {
        "name": "late",
        "kind": "secrets",
        "causes": [
            {
                "reason": "NamespaceTerminating",
                "message": "namespace leaving is being terminated",
                "field": "metadata.namespace",
            }
        ],
    }
    deadline = time.monotonic() + 30
    while call("GET", "/api/v1/namespaces/leaving").status_code == 200:
        assert time.monotonic() < deadline, "the namespace is still there"
        time.sleep(0.1)
    assert call("GET", "/api/v1/namespaces/leaving").status_code == 404


def test_a_new_namespace_gets_a_default_service_account(call: Call) -> None:
    """The ServiceAccount controller makes it (on the real server, a moment later)."""
    made = call("POST", "/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    deadline = time.monotonic() + 10
    found = call("GET", "/api/v1/namespaces/fresh/serviceaccounts/default")
    while found.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
        found = call("GET", "/api/v1/namespaces/fresh/serviceaccounts/default")
    assert found.status_code == 200, found.text
    assert found.json()["metadata"]["namespace"] == "fresh"
    assert isinstance(found.json()["metadata"]["resourceVersion"], str)
    call("DELETE", "/api/v1/namespaces/fresh")
