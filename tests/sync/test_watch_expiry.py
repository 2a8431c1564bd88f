"""A watch whose resourceVersion has expired (410 Gone once etcd compacted it) is recovered
by listing again, on a real API server that compacts every second and serves watches from
etcd itself (no watch cache), so an old resourceVersion really is gone."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pullkeeper.services import sync
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from tests.kube.real import ControlPlane, RealCluster, require_control_plane
from tests.sync.conftest import World, eventually


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    require_control_plane()
    plane = ControlPlane(
        tmp_path_factory.mktemp("kube-compacting"),
        "--watch-cache=false --etcd-compaction-interval=1s",
    ).start()
    yield plane
    plane.stop()


def _relists(kube: RealCluster) -> int:
    return kube.count("list", "namespaces")


def test_an_expired_watch_is_recovered_by_listing_again(
    compacting: ControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pullkeeper.sync")
    kube = RealCluster(compacting)
    server = Server.open(Settings(data=tmp_path / "data", sync_poll_seconds=0.2))
    # Watches that the API server ends every second: each is started again from the last
    # resourceVersion it saw, which compaction soon makes too old.
    manager = sync.SyncManager(server, sync.Options(poll_seconds=0.2, watch_timeout=1))
    server.sync = manager
    server.on_change.append(manager.changed)
    manager.start()
    try:
        world = World(server, manager, {}, tmp_path)
        world.cluster("c1", kube)
        world.namespace("first")
        world.cred("wide")
        eventually(lambda: world.where("wide") == ["default", "first"])
        listed = _relists(kube)
        # Writes elsewhere move etcd's revision on; compaction leaves the watches behind.
        deadline = time.monotonic() + 6
        i = 0
        while time.monotonic() < deadline:
            kube.create("configmaps", {"metadata": {"name": f"churn-{i}"}}, namespace="default")
            kube.delete("configmaps", f"churn-{i}", "default")
            i += 1
            time.sleep(0.05)
        eventually(lambda: _relists(kube) > listed, what="a 410 Gone answered by a new list")
        # (The 410 comes inside the watch's stream, as an ERROR event: the log says it.)
        gone = [r.message for r in caplog.records if "listing again" in r.message]
        assert gone and "is too old" in gone[0], gone
        world.namespace("later")
        eventually(lambda: world.where("wide") == ["default", "first", "later"], timeout=20)
        assert manager.statuses.errors() == {}, "an expired watch is no error"
    finally:
        manager.stop()
        server.close()
        kube.cleanup()
