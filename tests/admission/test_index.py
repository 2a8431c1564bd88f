"""The webhook's index: kept current from other processes' writes, and the failure modes
when it cannot answer in time."""

from __future__ import annotations

import time
from pathlib import Path

from pullkeeper.services import admission, clusters, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from tests.admission.conftest import pod, review
from tests.sync.conftest import eventually


def test_another_processes_change_reaches_the_index_within_two_seconds(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data", sync=False, admission_refresh_seconds=1.0)
    reader, writer = Server.open(settings), Server.open(settings)  # two replicas, one store
    try:
        hook = admission.start(reader)
        with writer.transaction() as session:
            c = clusters.create_cluster(session, SYSTEM, "c1")
            clusters.put_namespace(session, SYSTEM, c, "shop", None)
        eventually(lambda: hook.index.cluster("c1") is not None, timeout=5)
        body = review(pod("evil.io/x:1"))["request"]
        assert hook.validate(body, "c1")["response"]["allowed"] is True
        started = time.monotonic()
        with writer.transaction() as session:
            c = clusters.get_cluster(session, SYSTEM, "c1")
            policies.put(session, SYSTEM, c, None, {"allowlist": ["quay.io"]})
        eventually(lambda: not hook.validate(body, "c1")["response"]["allowed"], timeout=5)
        # Polled every second: the change arrives within two.
        assert time.monotonic() - started < 2.5
        hook.index.stop()
    finally:
        reader.close()
        writer.close()


def test_an_index_not_ready_in_time_follows_the_failure_mode(tmp_path: Path) -> None:
    server = Server.open(Settings(data=tmp_path / "data", sync=False))
    try:
        index = admission.Index(server, 1.0)  # never started: never ready
        body = review(pod("quay.io/x:1"))["request"]
        closed = admission.Webhook(server, index, admission.Options(decide_timeout=0.05))
        denied = closed.validate(body, None)["response"]
        assert (
            denied["allowed"] is False and "could not decide in time" in denied["status"]["message"]
        )
        passed = closed.mutate(body, None)["response"]
        assert passed["allowed"] is True and "patch" not in passed
        assert "could not decide in time" in passed["warnings"][0]
        opened = admission.Webhook(
            server, index, admission.Options(decide_timeout=0.05, validate_fail_closed=False)
        )
        assert opened.validate(body, None)["response"]["allowed"] is True
        assert closed.snapshot()[("validate", "undecided")] == 1
    finally:
        server.close()
