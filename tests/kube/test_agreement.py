"""Where the fake and the real API server once disagreed, the same request against both: the
real server is right, and these pin the fake to it."""

from __future__ import annotations

import base64
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
