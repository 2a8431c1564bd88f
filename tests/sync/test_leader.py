"""Several replicas on one store: one syncs (it holds the sync lease), the others report its
statuses; when it stops or dies another takes over. Two servers of the product share one
store here, and the real cluster, whose audit log counts every write."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pullkeeper import __version__, process
from pullkeeper.services import admission, leader, sync
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import Credential, Lease, SyncStatus, utcnow
from tests.admission.conftest import pull_secrets_added
from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.real import RealCluster
from tests.server.conftest import Backend, backend  # noqa: F401
from tests.sync.conftest import World, eventually

LEASE = 3.0  # seconds: short, so that a takeover after a crash is quick to see


@pytest.fixture
def replicas(
    tmp_path: Path,
    backend: Backend,  # noqa: F811
    real_kube: RealCluster,
) -> Iterator[list[World]]:
    """Two replicas (server + sync) on one store (SQLite, then PostgreSQL), and cluster c1
    on the real API server."""
    made: list[World] = []
    url = backend.fresh_url()

    def replica() -> World:
        settings = Settings(
            data=tmp_path / "data",
            database_url=url,
            sync_poll_seconds=0.2,
            sync_lease_seconds=LEASE,
        )
        server = Server.open(settings)
        world = World(server, sync.start(server), {"c1": real_kube}, tmp_path)
        made.append(world)
        return world

    first = replica()
    first.cluster("c1", real_kube)
    second = replica()
    try:
        yield [first, second]
    finally:
        for world in made:
            world.manager.stop()
            world.server.close()


def _status(world: World, credential_id: str) -> dict[str, Any]:
    with world.server.reading() as session:
        cred = session.get(Credential, credential_id)
        assert cred is not None
        return sync.status_of(world.server, cred)


def _states(world: World, credential_id: str) -> dict[str, str]:
    return {s["namespace"]: s["state"] for s in _status(world, credential_id)["items"]}


def test_one_replica_syncs_and_every_replica_reports_its_statuses(replicas: list[World]) -> None:
    first, second = replicas
    assert (first.manager.leading, second.manager.leading) == (True, False)
    for name in ("shop", "cart"):
        first.namespace(name)
    cid = second.cred("wide", server="quay.io")  # written through the follower
    eventually(lambda: first.where("wide") == ["cart", "default", "shop"], what="delivered")
    # Only the leader runs loops and writes; each Secret was written once.
    assert second.manager.loops == {}
    assert first.loop().writes == 3
    assert first.kubes["c1"].count("write", "secrets") == 3

    # The follower answers from what the leader wrote to the store, naming the leader.
    want = {"cart": "in_sync", "default": "in_sync", "shop": "in_sync"}
    eventually(lambda: _states(second, cid) == want, what="the follower sees the statuses")
    assert _states(first, cid) == want
    follower = _status(second, cid)
    assert follower["synced_by"] == first.manager.lease.holder != second.manager.lease.holder
    assert _status(first, cid)["synced_by"] == first.manager.lease.holder
    assert second.manager.statuses.counts()["in_sync"] == 3
    # The store holds the states' values (as the API gives them), not their Python names.
    with second.server.reading() as session:
        stored = session.scalars(select(SyncStatus.state).where(SyncStatus.credential_id == cid))
        assert sorted(stored) == ["in_sync"] * 3


def test_the_api_servers_audit_log_names_the_replica_that_wrote(
    replicas: list[World], real_kube: RealCluster
) -> None:
    first, _ = replicas
    first.namespace("shop")
    first.cred("named", server="quay.io")
    eventually(lambda: first.where("named") == ["default", "shop"], what="delivered")
    # The lease holder's name is HOST:PID:INSTANCE; its requests say HOST:PID.
    identity, _, instance = first.manager.lease.holder.rpartition(":")
    assert identity == process.identity() and instance, first.manager.lease.holder
    writes = real_kube.requests("write", "secrets")
    assert len(writes) == 2
    assert {e["userAgent"] for e in writes} == {f"pullkeeper/{__version__} ({identity})"}


def test_the_follower_reports_a_cluster_the_leader_cannot_reach(replicas: list[World]) -> None:
    first, second = replicas
    down = FakeApiServer().start()
    first.cluster("c2", down)
    down.stop()  # registered, but its API server is gone
    cid = second.cred("far", cluster="c2")

    def error() -> str | None:
        found: str | None = _status(second, cid)["cluster_error"]
        return found

    message = eventually(error, what="the follower sees the leader's cluster error")
    assert "cannot reach the API server" in message
    assert second.manager.statuses.errors() == first.manager.statuses.errors()
    assert "cannot be synced" in _status(second, cid)["note"]


def test_the_followers_webhook_skips_secrets_the_leader_found_in_conflict(
    replicas: list[World],
) -> None:
    first, second = replicas
    first.namespace("shop")
    first.kubes["c1"].create(
        "secrets",
        {
            "metadata": {"name": "pull", "namespace": "shop"},
            "type": "Opaque",
            "data": {"x": "eQ=="},
        },
    )
    first.cred("pull", server="quay.io")
    hook = admission.start(second.server)  # the follower's webhook
    try:
        eventually(lambda: hook.index.ready.is_set() and hook.index.cluster("c1") is not None)

        def secrets(namespace: str) -> list[str]:
            return pull_secrets_added(hook, "quay.io/team/app:v1", namespace)

        eventually(lambda: secrets("default") == ["pull"], what="delivered: added")
        eventually(lambda: secrets("shop") == [], what="someone else's Secret: not added")
    finally:
        hook.index.stop()


def test_when_the_leader_stops_another_replica_takes_over_at_once(replicas: list[World]) -> None:
    first, second = replicas
    first.namespace("shop")
    first.cred("one", server="quay.io")
    eventually(lambda: first.where("one") == ["default", "shop"])
    first.manager.stop()  # gives the lease up
    eventually(lambda: second.manager.leading, timeout=LEASE / 2, what="the follower leads")
    # The new leader finds the Secrets as they should be: no write for them.
    loop = second.loop()
    eventually(lambda: loop.passes >= 1, what="a first pass")
    assert loop.writes == 0
    cid = second.cred("two", server="ghcr.io")
    eventually(lambda: second.where("two") == ["default", "shop"], what="the new leader syncs")
    eventually(lambda: _states(second, cid) == {"default": "in_sync", "shop": "in_sync"})


def test_a_dead_leaders_lease_is_taken_once_it_runs_out(replicas: list[World]) -> None:
    first, second = replicas
    # The leader hangs: it neither renews nor releases (its loops stop as a frozen one would).
    first.manager._stop.set()
    first.manager._changed.set()
    first.manager._thread.join(5)
    first.manager._stop_loops()
    held_until = first.manager.lease.until
    assert held_until is not None and not second.manager.leading
    eventually(lambda: second.manager.leading, timeout=LEASE + 2, what="the lease ran out")
    assert utcnow() >= held_until
    first.namespace("shop")
    second.cred("after", server="quay.io")
    eventually(lambda: second.where("after") == ["default", "shop"])


def test_a_leader_stalled_past_its_lease_writes_nothing_more(replicas: list[World]) -> None:
    """Its manager stalls (no renewal) while its cluster loop goes on: once the lease has
    run out, the loop writes no Secret, though it sees the change; the new leader does."""
    first, second = replicas
    first.namespace("shop")
    first.manager._stop.set()
    first.manager._changed.set()
    first.manager._thread.join(5)
    loop = first.loop()
    held_until = first.manager.lease.until
    assert held_until is not None
    eventually(lambda: utcnow() >= held_until, timeout=LEASE + 2, what="the lease ran out")
    writes = loop.writes
    cid = first.cred("late", server="quay.io")
    first.manager.refresh(poke=True)  # what its manager would do, were it to wake
    eventually(lambda: second.manager.leading, timeout=LEASE + 2, what="the follower leads")
    eventually(lambda: second.where("late") == ["default", "shop"], what="the new leader syncs")
    eventually(lambda: _states(second, cid) == {"default": "in_sync", "shop": "in_sync"})
    assert loop.writes == writes
    first.manager._stop_loops()


def test_a_lease_of_a_process_of_this_host_that_is_gone_is_taken_at_once(tmp_path: Path) -> None:
    server = Server.open(Settings(data=tmp_path / "data", sync_poll_seconds=0.2))
    try:
        finished = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        dead = f"{socket.gethostname()}:{finished.stdout.strip()}:deadbeef"
        alive = f"{socket.gethostname()}:1:cafe"  # pid 1 runs
        for holder, taken in ((alive, False), (dead, True)):
            with server.db.session() as session:
                session.merge(
                    Lease(
                        name=leader.SYNC,
                        holder=holder,
                        acquired_at=utcnow(),
                        expires_at=utcnow() + timedelta(minutes=5),
                    )
                )
            lease = leader.Lease(server.db, leader.SYNC, 15)
            assert lease.hold() is taken, holder
            assert lease.other == ("" if taken else holder)
    finally:
        server.close()
