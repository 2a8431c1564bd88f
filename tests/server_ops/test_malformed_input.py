"""Malformed input at a real `pullkeeper serve` on 127.0.0.1: JSON nested deeper than a parser
recurses, in the webhook's reviews, the API's bodies, a check's config and the pages'
uploads; AdmissionReviews whose fields have other types than Kubernetes gives them. Each is
answered 400 or 422 (or an AdmissionReview denial) saying what is wrong; none is a 500, and
the server's log holds no traceback and no "unexpected error"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.admission.conftest import pod, review
from tests.server_ops import Serve, client, ok, seed_basics

DEPTH = 100_000  # 200 kB of brackets: far under the body limit, far over any recursion limit
DEEP_JSON = "[" * DEPTH + "]" * DEPTH
DEEP_KEY = "[" * 10_000 + "]" * 10_000  # within a password's 64 KiB
DEEP_YAML = "kind: Secret\ndata: " + "[" * 5000 + "]" * 5000 + "\n"  # YAML, not JSON


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    s = Serve(tmp_path_factory.mktemp("malformed") / "data", webhook=True)
    s.start()
    try:
        yield s
    finally:
        s.stop()
    log = s.log()
    assert "Traceback" not in log and "unexpected error" not in log, log


@pytest.fixture(scope="module")
def seeded(serve: Serve) -> dict[str, Any]:
    with client(serve.url) as c:
        found = seed_basics(c)
        ok(c.put(f"/clusters/{found['cluster']['name']}/policy", json={"forbid_latest": True}))
    return found


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    message: str = answer.json()["error"]["message"]
    return message


def test_reviews_nested_too_deeply_or_mistyped(serve: Serve, seeded: dict[str, Any]) -> None:
    cluster, namespace = seeded["cluster"]["name"], seeded["namespace"]["name"]
    path = f"/admission/validate/{cluster}"
    with serve.webhook_client() as hook:
        deep = hook.post(path, content=DEEP_JSON.encode())
        assert "nests too deeply" in _error(deep, 400)
        for field, value in (("namespace", ["x"]), ("userInfo", "x"), ("kind", "Pod")):
            body = review(pod("nginx:latest"), namespace=namespace)
            body["request"][field] = value
            assert f"request.{field} must be" in _error(hook.post(path, json=body), 400)
        for webhook in ("mutate", "validate"):
            for spec_or_meta in (
                {"spec": {"containers": 5}},
                {"metadata": "x", "spec": {"containers": [{"name": "c", "image": "a:latest"}]}},
                {"spec": {"containers": [{"name": "c", "image": 5}]}},
                {"spec": {"imagePullSecrets": 5, "containers": []}},
            ):
                body = review(pod("nginx"), namespace=namespace)
                body["request"]["object"] = {"apiVersion": "v1", "kind": "Pod", **spec_or_meta}
                answer = hook.post(f"/admission/{webhook}/{cluster}", json=body)
                assert answer.status_code == 200, answer.text
                response = answer.json()["response"]
                assert response["allowed"] is False, response
                assert response["status"]["code"] == 400
                assert response["status"]["message"].startswith("the Pod is malformed: ")


def test_api_bodies_nested_too_deeply(serve: Serve, seeded: dict[str, Any]) -> None:
    with client(serve.url) as c:
        for path in ("/clusters", "/credentials", "/checks"):
            answer = c.post(path, content=DEEP_JSON, headers={"Content-Type": "application/json"})
            assert "nests too deeply" in _error(answer, 400), path
        # A check's config: a docker config or a Secret manifest, as JSON or YAML.
        for config in (DEEP_JSON, '{"auths": ' + DEEP_JSON + "}", DEEP_YAML):
            answer = c.post("/checks", json={"image": "nginx", "config": config})
            assert "config" in _error(answer, 422)
        # A GCR key is JSON, too.
        body = {
            "name": "deep-gcr",
            "cluster": seeded["cluster"]["name"],
            "scope": "cluster",
            "provider": "gcr",
            "password": DEEP_KEY,
        }
        assert "GCR needs a service-account JSON key" in _error(
            c.post("/credentials", json=body), 422
        )


def _page_session(serve: Serve) -> httpx.Client:
    """A browser's session: an API token of the admin's in the session cookie."""
    with client(serve.url) as c:
        issued = ok(c.post("/tokens", json={"name": "pages"}), 201)
    return httpx.Client(
        base_url=serve.url,
        cookies={"pk_session": f"{issued['id']}.{issued['token']}"},
        headers={"Origin": serve.url},
        timeout=30,
    )


def _csrf(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_uploads_nested_too_deeply(serve: Serve, seeded: dict[str, Any]) -> None:
    with _page_session(serve) as pages:
        csrf = _csrf(pages.get("/checks"))
        for content in (DEEP_JSON, DEEP_YAML):
            answer = pages.post(
                "/checks",
                data={"csrf": csrf, "image": "nginx"},
                files={"config": ("config.json", content.encode(), "application/json")},
            )
            assert answer.status_code == 422, answer.text[:500]
            assert "nested too deeply to be a manifest" in answer.text
        csrf = _csrf(pages.get("/credentials/new", params={"provider": "gcr"}))
        answer = pages.post(
            "/credentials/new",
            data={
                "csrf": csrf,
                "name": "deep-key",
                "cluster": seeded["cluster"]["name"],
                "scope": "cluster",
                "provider": "gcr",
            },
            files={"key_file": ("key.json", DEEP_KEY.encode(), "application/json")},
        )
        assert answer.status_code == 422, answer.text[:500]
        assert "GCR needs a service-account JSON key" in answer.text
