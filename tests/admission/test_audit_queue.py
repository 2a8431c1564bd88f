"""The admission audit records' way to the store: queued by the review, written by the
writer's thread in batches, counted when the queue is full or the store refuses them, and
written when the webhook stops."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pullkeeper.api.webhook import create_webhook_app
from pullkeeper.app import create_app
from pullkeeper.services import admission_audit, audit, clusters, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.admission_audit import ATTEMPTS, AuditWriter, Entry
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from tests.admission.conftest import Hook, pod, review


def _records(server: Server) -> list[dict[str, Any]]:
    with server.reading() as session:
        events, _ = audit.query(session, SYSTEM, limit=1000)
    return [e for e in events if e["action"].startswith("admission.")]


def test_a_denials_record_reaches_the_store_through_the_queue(hook: Hook) -> None:
    hook.policy(allowlist=["quay.io"])
    answer = hook.post("validate", review(pod("ghcr.io/x:1")), cluster="c1")["response"]
    assert answer["allowed"] is False  # answered before the record is written
    (record,) = hook.admission_records(1)
    with hook.server.reading() as session:
        c = clusters.get_cluster(session, SYSTEM, "c1")
        web = clusters.get_project(session, SYSTEM, "web", c).id
    assert record["action"] == "admission.deny"
    assert record["actor"] == "alice@example.com" and record["source"] == "admission:c1"
    assert record["object_type"] == "pod" and record["object_id"] == "web"
    assert record["project_id"] == web  # the namespace's project, looked up by the writer
    assert record["after"]["namespace"] == "shop" and record["after"]["operation"] == "CREATE"
    assert "ghcr.io/x:1" in record["after"]["findings"][0]
    metrics = hook.api.get("/metrics").text
    assert "pullkeeper_admission_audit_queued 0.0" in metrics
    assert "pullkeeper_admission_audit_overflow_total 0.0" in metrics


def test_a_full_queue_still_answers_counts_the_overflow_and_the_stop_writes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer's thread waits an hour between writes: only the stop writes.
    monkeypatch.setattr(admission_audit, "FLUSH_SECONDS", 3600.0)
    server = Server.open(Settings(data=tmp_path / "data", sync=False, admission_audit_queue=2))
    with server.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "c1")
        clusters.put_namespace(session, SYSTEM, c, "shop", None)
        policies.put(session, SYSTEM, c, None, {"allowlist": ["quay.io"]})
    try:
        with (
            TestClient(create_webhook_app(server)) as hook,
            TestClient(create_app(server)) as api,
        ):
            for image in ("ghcr.io/a:1", "ghcr.io/b:1", "ghcr.io/c:1"):
                answer = hook.post("/admission/validate/c1", json=review(pod(image)))
                assert answer.status_code == 200
                assert answer.json()["response"]["allowed"] is False  # the third one too
            metrics = api.get("/metrics").text
            assert "pullkeeper_admission_audit_queued 2.0" in metrics, metrics
            assert "pullkeeper_admission_audit_overflow_total 1.0" in metrics, metrics
            # Over the queue is not over the namespace's records a minute: counted apart.
            assert "pullkeeper_admission_audit_dropped_total 0.0" in metrics, metrics
            assert _records(server) == []  # still queued
        # The listener stopped: what was queued is in the store.
        found = sorted(e["after"]["findings"][0] for e in _records(server))
        assert len(found) == 2
        assert "ghcr.io/a:1" in found[0] and "ghcr.io/b:1" in found[1]
    finally:
        server.close()


def _entry(namespace: str = "shop") -> Entry:
    return Entry(
        cluster="c1",
        namespace=namespace,
        username="alice",
        action="admission.deny",
        object_type="pod",
        object_id="web",
        after={"namespace": namespace, "operation": "CREATE", "findings": ["f"]},
    )


def test_a_batch_the_store_refuses_is_tried_again_then_counted_as_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = Server.open(Settings(data=tmp_path / "data", sync=False))
    try:
        writer = AuditWriter(server, 10)  # not started: flushed by hand, as its thread does
        write = writer._write
        refusals = iter([True])  # the first flush is refused, the next one goes through

        def flaky(batch: list[Entry]) -> None:
            if next(refusals, False):
                raise OSError("the store is down")
            write(batch)

        monkeypatch.setattr(writer, "_write", flaky)
        assert writer.put(_entry())
        writer.flush()
        assert (writer.write_errors, writer.lost, writer.queued) == (1, 0, 1)
        assert writer.put(_entry("cart"))
        writer.flush()  # the refused batch and the new record, together
        assert (writer.write_errors, writer.lost, writer.queued) == (1, 0, 0)
        assert sorted(e["after"]["namespace"] for e in _records(server)) == ["cart", "shop"]

        refusals = iter([True] * ATTEMPTS)
        assert writer.put(_entry())
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="pullkeeper.admission"):
            for _ in range(ATTEMPTS):
                writer.flush()
        assert (writer.write_errors, writer.lost, writer.queued) == (1 + ATTEMPTS, 1, 0)
        assert len(_records(server)) == 2
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == ATTEMPTS and all("\n" not in line for line in lines)
        assert "OSError" in lines[-1] and "lost" in lines[-1]
        assert "the store is down" not in " ".join(lines)  # the type, never the message
        writer.flush()  # nothing left to try
        assert writer.write_errors == 1 + ATTEMPTS
    finally:
        server.close()
