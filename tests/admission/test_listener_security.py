"""Who can reach the webhook of a real `pullkeeper serve` on 127.0.0.1: never through the API's
port; on the TLS listener, only a client with a certificate of `--webhook-client-ca` when it
is set; and what a flood of denied reviews may write to the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admission.conftest import pod, review
from tests.server_ops import Serve, client, ok, seed_basics

FORGED = "mallory-forged"


def _seeded(serve: Serve) -> dict[str, Any]:
    """A cluster, project, namespace, a credential per scope, and a policy that denies
    :latest; a review for the namespace's pod names the Secrets and gets denied."""
    with client(serve.url) as c:
        seeded = seed_basics(c)
        cluster = seeded["cluster"]["name"]
        ok(c.put(f"/clusters/{cluster}/policy", json={"forbid_latest": True}))
    return seeded


def _review(seeded: dict[str, Any]) -> dict[str, Any]:
    namespace = seeded["namespace"]["name"]
    obj = pod("namespace.registry.example.com/app:latest")
    obj["metadata"]["namespace"] = namespace
    body = review(obj, namespace=namespace)
    body["request"]["userInfo"] = {"username": FORGED, "groups": ["system:masters"]}
    return body


def _admission_actors(serve: Serve) -> list[str]:
    with client(serve.url) as c:
        events = ok(c.get("/audit", params={"limit": 1000}))["items"]
    return [e["actor"] for e in events if e["action"].startswith("admission.")]


@pytest.mark.parametrize("webhook", [False, True], ids=["webhook-off", "webhook-on"])
def test_the_api_port_answers_no_review(tmp_path: Path, webhook: bool) -> None:
    serve = Serve(tmp_path / "data", webhook=webhook)
    serve.start()
    try:
        seeded = _seeded(serve)
        cluster = seeded["cluster"]["name"]
        body = _review(seeded)
        for webhook_name in ("mutate", "validate"):
            for path in (f"/admission/{webhook_name}", f"/admission/{webhook_name}/{cluster}"):
                answer = httpx.post(serve.url + path, json=body, timeout=10)
                assert answer.status_code == 404, (path, answer.text)
                assert answer.json()["error"]["code"] == "not_found"
                for cred in seeded["credentials"]:
                    assert cred["name"] not in answer.text
        assert FORGED not in _admission_actors(serve)
        if webhook:
            # The TLS listener is where reviews are answered, and nothing else is.
            with serve.webhook_client() as hook:
                answer = hook.post(f"/admission/validate/{cluster}", json=body)
                assert answer.status_code == 200, answer.text
                assert answer.json()["response"]["allowed"] is False
                for path in ("/api/v1/credentials", "/metrics", "/", "/api/v1/openapi.json"):
                    assert hook.get(path).status_code == 404, path
                assert hook.get(f"/admission/mutate/{cluster}").status_code == 405
    finally:
        serve.stop()
    assert "Traceback" not in serve.log(), serve.log()
