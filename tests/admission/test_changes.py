"""Typed changes: what a committed transaction tells its listeners, and what it does not (an
audit row, a check's result, a rollback); how the index and the sync take them."""

from __future__ import annotations

from collections.abc import Iterator, Set
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pullkeeper.services import admission, admission_index, clusters, credentials, sync
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.errors import Invalid
from pullkeeper.services.server import Server
from pullkeeper.services.sync import discovery
from pullkeeper.settings import Settings
from pullkeeper.store import changes
from pullkeeper.store.changes import Change
from pullkeeper.store.models import AuditEvent, Credential, utcnow
from tests.admission.conftest import pod, review


class Heard:
    def __init__(self) -> None:
        self.calls: list[Set[Change]] = []

    def __call__(self, found: Set[Change]) -> None:
        self.calls.append(found)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """Cluster c1: project web (namespace shop), namespace tools, a cluster-wide credential."""
    server = Server.open(Settings(data=tmp_path / "data", sync=False))
    with server.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "c1")
        web = clusters.create_project(session, SYSTEM, c, "web")
        clusters.put_namespace(session, SYSTEM, c, "shop", web)
        clusters.put_namespace(session, SYSTEM, c, "tools", None)
        scope = credentials.resolve_scope(session, SYSTEM, "cluster", c, None, None)
        spec = credentials.CredentialSpec(
            name="wide",
            scope=scope,
            provider="custom",
            server="quay.io",
            username="u",
            password="p",
        )
        credentials.create(session, SYSTEM, server.vault, spec)
    yield server
    server.close()


def _ids(server: Server) -> tuple[str, str]:
    """The cluster's id and its credential's."""
    with server.reading() as session:
        cred = session.scalars(select(Credential)).one()
        return cred.cluster_id, cred.id


def test_an_audit_row_or_a_check_result_wakes_neither_the_index_nor_the_sync(
    server: Server,
) -> None:
    heard = Heard()
    index = admission_index.Index(server, 1.0)
    index.refresh()
    manager = sync.SyncManager(server, sync.Options())  # not started: its wake flag shows
    server.on_change += [heard, index.changed, manager.changed]
    hook = admission.Webhook(server, index, admission.Options())
    with server.reading() as session:
        audited = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        revision = discovery.revision(session)
    request = review(pod("evil.io/x:1"), namespace="shop")["request"]
    hook._record(request, "enforce", ["evil.io is not allowed"], "c1")  # what a denial queues
    hook.audit.flush()  # what the writer's thread does with it
    with server.reading() as session:
        assert session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) > (
            audited or 0
        )
        # The sync's cluster loops poll this revision: unmoved, they reload nothing.
        assert discovery.revision(session) == revision
    assert heard.calls == []
    # A credential's check result is heard as what it is, a "check" (listings show it),
    # which neither the index nor the sync reads; a rolled-back change: nothing.
    cid, cred_id = _ids(server)
    with server.transaction() as session:
        session.execute(
            update(Credential)
            .where(Credential.id == cred_id)
            .values(check_status="ok", checked_at=utcnow(), updated_at=Credential.updated_at)
        )
    with pytest.raises(Invalid), server.transaction() as session:
        clusters.put_namespace(
            session, SYSTEM, clusters.get_cluster(session, SYSTEM, cid), "x", None
        )
        raise Invalid("refused")
    assert heard.calls == [{Change(changes.CHECK)}]
    with server.reading() as session:
        assert discovery.revision(session) == revision  # the sync's loops reload nothing
    assert not index._changed.is_set() and not manager._changed.is_set()
    index.refresh()
    assert (index.builds, index.updates) == (1, 0)


def test_a_change_is_heard_by_kind_and_place_after_its_commit(server: Server) -> None:
    heard = Heard()
    index = admission_index.Index(server, 1.0)
    manager = sync.SyncManager(server, sync.Options())
    server.on_change += [heard, index.changed, manager.changed]
    cid, cred_id = _ids(server)
    with server.transaction() as session:
        c = clusters.get_cluster(session, SYSTEM, cid)
        # shop leaves project web: where it was and where it is are one namespace change.
        clusters.put_namespace(session, SYSTEM, c, "shop", None)
        cred = credentials.get(session, SYSTEM, cred_id)
        credentials.set_state(session, SYSTEM, cred, "inactive")
        assert heard.calls == []  # nothing before the commit
    assert heard.calls == [
        {Change("namespace", cid, None, "shop"), Change("credential", cid, None, None)}
    ]
    assert index._changed.is_set() and manager._changed.is_set()
    with server.reading() as session:
        logged = changes.since(session, 0)[1]
    assert set(logged[-2:]) == heard.calls[0]


def test_a_membership_change_reaches_neither_the_index_nor_the_sync(server: Server) -> None:
    index = admission_index.Index(server, 1.0)
    manager = sync.SyncManager(server, sync.Options())
    index.changed({Change("membership", None, "p"), Change("user"), Change("token")})
    manager.changed({Change("membership", None, "p")})
    assert not index._changed.is_set() and not manager._changed.is_set()


def test_a_bulk_change_of_unknown_extent_rebuilds_the_index(server: Server) -> None:
    heard = Heard()
    server.on_change.append(heard)
    index = admission_index.Index(server, 1.0)
    index.refresh()
    with server.transaction() as session:
        session.execute(update(Credential).values(state="inactive"))
    assert heard.calls == [{Change("credential")}]
    index.refresh()
    assert index.builds == 2
    view = index.cluster("c1")
    assert view is not None and view.view("shop").secrets_for("quay.io/x") == []


def test_the_log_keeps_its_newest_row_when_pruned(server: Server) -> None:
    with server.db.session() as session:
        newest = changes.newest(session)
        assert newest > 1 and not changes.missed(session, 0)
        changes.prune(session, utcnow().replace(year=utcnow().year + 1))
    with server.reading() as session:
        assert changes.since(session, 0)[0] == newest
        assert changes.missed(session, 0) and not changes.missed(session, newest - 1)
