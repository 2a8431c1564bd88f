"""Who can reach the webhook of a real `pullkeeper serve` on 127.0.0.1: never through the API's
port; on the TLS listener, only a client with a certificate of `--webhook-client-ca` when it
is set; and what a flood of denied reviews may write to the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admission.conftest import pod, review
from tests.admission.pki import CA
from tests.integration.conftest import assert_one_line_error, pk
from tests.server_ops import Serve, client, free_port, ok, seed_basics
from tests.sync.conftest import eventually

FORGED = "mallory-forged"


def _seeded(serve: Serve) -> dict[str, Any]:
    """A cluster, project, namespace, a credential per scope, and a policy that denies
    :latest; a review for the namespace's pod names the Secrets and gets denied."""
    with client(serve.url) as c:
        seeded = seed_basics(c)
        cluster = seeded["cluster"]["name"]
        ok(c.put(f"/clusters/{cluster}/policy", json={"forbid_latest": True}))
    return seeded


def _review(seeded: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    namespace = namespace or seeded["namespace"]["name"]
    obj = pod("namespace.registry.example.com/app:latest")
    obj["metadata"]["namespace"] = namespace
    body = review(obj, namespace=namespace)
    body["request"]["userInfo"] = {"username": FORGED, "groups": ["system:masters"]}
    return body


def _admission_records(serve: Serve) -> list[dict[str, Any]]:
    """The admission audit records, once the webhook has written every one it queued."""
    eventually(
        lambda: "pullkeeper_admission_audit_queued 0.0" in _metrics(serve),
        what="the queued admission audit records written",
    )
    with client(serve.url) as c:
        events = ok(c.get("/audit", params={"limit": 1000}))["items"]
    return [e for e in events if e["action"].startswith("admission.")]


def _metrics(serve: Serve) -> str:
    return httpx.get(f"{serve.url}/metrics", timeout=10).text


def _admission_actors(serve: Serve) -> list[str]:
    return [e["actor"] for e in _admission_records(serve)]


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


def test_the_webhook_requires_a_client_certificate_of_the_configured_ca(tmp_path: Path) -> None:
    callers = CA(tmp_path / "callers", "apiserver callers")
    apiserver = callers.client("kube-apiserver")
    stranger = CA(tmp_path / "stranger", "someone else").client("kube-apiserver")
    serve = Serve(tmp_path / "data", webhook=True, extra=["--webhook-client-ca", str(callers.cert)])
    serve.start()
    try:
        seeded = _seeded(serve)
        cluster = seeded["cluster"]["name"]
        body = _review(seeded)
        # Without a certificate, or with one another CA signed, the handshake is refused:
        # no answer, and no record in the forged name.
        for cert in (None, stranger.pair):
            with serve.webhook_client(cert) as hook, pytest.raises(httpx.TransportError):
                hook.post(f"/admission/validate/{cluster}", json=body)
        assert FORGED not in _admission_actors(serve)
        # The API server's certificate, signed by the configured CA, is answered.
        with serve.webhook_client(apiserver.pair) as hook:
            answer = hook.post(f"/admission/validate/{cluster}", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["response"]["allowed"] is False
        assert _admission_actors(serve) == [FORGED]
    finally:
        serve.stop()
    log = serve.log()
    assert "Traceback" not in log, log
    assert "answers any client" not in log  # the warning is for listeners without a CA


def test_a_client_ca_that_is_no_certificate_stops_serve_with_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("this is not a certificate\n")
    done = pk(
        "serve", "--data", str(tmp_path / "data"), "--port", str(free_port()),
        "--webhook-port", str(free_port()), "--webhook-client-ca", str(bogus),
    )  # fmt: skip
    message = assert_one_line_error(done)
    assert "cannot load the webhook's TLS files" in message and "certificate" in message.lower()


def test_a_pod_denied_in_a_loop_cannot_flood_the_audit_trail(tmp_path: Path) -> None:
    settings = tmp_path / "pullkeeper.toml"
    settings.write_text("admission_audit_per_minute = 3\n")
    serve = Serve(tmp_path / "data", webhook=True, extra=["--config", str(settings)])
    serve.start()
    try:
        seeded = _seeded(serve)
        cluster, project = seeded["cluster"]["name"], seeded["project"]["name"]
        with client(serve.url) as c:
            ok(c.put(f"/clusters/{cluster}/namespaces/quiet", json={"project": project}))
        looping = seeded["namespace"]["name"]
        with serve.webhook_client() as hook:
            for _ in range(25):
                answer = hook.post(f"/admission/validate/{cluster}", json=_review(seeded))
                assert answer.json()["response"]["allowed"] is False  # the decision stands
            answer = hook.post(f"/admission/validate/{cluster}", json=_review(seeded, "quiet"))
            assert answer.json()["response"]["allowed"] is False
        # Three records for the looping namespace (the burst), and the other namespace's own.
        namespaces = [e["after"]["namespace"] for e in _admission_records(serve)]
        assert sorted(namespaces) == sorted([looping] * 3 + ["quiet"])
        metrics = _metrics(serve)
        assert "pullkeeper_admission_audit_dropped_total 22.0" in metrics, metrics
        assert "pullkeeper_admission_audit_overflow_total 0.0" in metrics, metrics
        # Namespace names made up one per review share the cluster's budget: ten
        # namespaces' worth a minute (30 here, 4 used), not one burst each.
        with serve.webhook_client() as hook:
            for i in range(50):
                body = _review(seeded, f"made-up-{i}")
                answer = hook.post(f"/admission/validate/{cluster}", json=body)
                assert answer.json()["response"]["allowed"] is False
        recorded = len(_admission_records(serve))
        assert 30 <= recorded < 36, recorded  # a few more refill while the loop runs
    finally:
        serve.stop()
