"""The webhook's index: kept current from other processes' writes, and the failure modes
when it cannot answer in time."""

from __future__ import annotations

from pathlib import Path

from pullkeeper.services import admission, admission_index, clusters, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store import changes
from tests.admission.conftest import pod, review
from tests.sync.conftest import eventually


def test_another_processes_change_reaches_the_index_by_its_poll(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data", sync=False, admission_refresh_seconds=0.5)
    reader, writer = Server.open(settings), Server.open(settings)  # two replicas, one store
    try:
        hook = admission.start(reader)
        assert hook.index.refresh_seconds == settings.admission_refresh_seconds
        with writer.transaction() as session:
            c = clusters.create_cluster(session, SYSTEM, "c1")
            clusters.put_namespace(session, SYSTEM, c, "shop", None)
        eventually(lambda: hook.index.revision == newest_change_id(writer), timeout=10)
        body = review(pod("evil.io/x:1"))["request"]
        assert hook.validate(body, "c1")["response"]["allowed"] is True
        with writer.transaction() as session:
            c = clusters.get_cluster(session, SYSTEM, "c1")
            policies.put(session, SYSTEM, c, None, {"allowlist": ["quay.io"]})
        # The reader writes nothing, so only its poll can bring the writer's change in.
        eventually(lambda: hook.index.revision == newest_change_id(writer), timeout=10)
        assert hook.validate(body, "c1")["response"]["allowed"] is False
        hook.index.stop()
    finally:
        reader.close()
        writer.close()


def test_the_index_is_built_once_then_updated_only_when_the_store_changed(
    tmp_path: Path,
) -> None:
    settings = Settings(data=tmp_path / "data", sync=False)
    reader, writer = Server.open(settings), Server.open(settings)
    try:
        index = admission_index.Index(
            reader, 1.0
        )  # not started: refreshed by hand, as a poll would
        hook = admission.Webhook(reader, index, admission.Options())
        with writer.transaction() as session:
            c = clusters.create_cluster(session, SYSTEM, "c1")
            clusters.put_namespace(session, SYSTEM, c, "shop", None)
        index.refresh()
        assert index.builds == 1
        body = review(pod("evil.io/x:1"))["request"]
        for _ in range(3):  # requests are answered from the index
            assert hook.validate(body, "c1")["response"]["allowed"] is True
        index.refresh()  # nothing new in the store
        assert (index.builds, index.updates) == (1, 0)
        with writer.transaction() as session:
            c = clusters.get_cluster(session, SYSTEM, "c1")
            policies.put(session, SYSTEM, c, None, {"allowlist": ["quay.io"]})
        index.refresh()
        assert (index.builds, index.updates) == (1, 1)  # the change alone, not a rebuild
        assert hook.validate(body, "c1")["response"]["allowed"] is False
    finally:
        reader.close()
        writer.close()


def newest_change_id(server: Server) -> int:
    """The change log's newest id: the store revision the index polls for."""
    with server.reading() as session:
        return changes.newest(session)


def test_an_index_not_ready_in_time_follows_the_failure_mode(tmp_path: Path) -> None:
    server = Server.open(Settings(data=tmp_path / "data", sync=False))
    try:
        index = admission_index.Index(server, 1.0)  # never started: never ready
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
