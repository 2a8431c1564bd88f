"""The change log on each store (SQLite, PostgreSQL): written by the hook in the writer's
transaction, read in order by another server's admission index, pruned past a reader."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pullkeeper.services import admission_index, clusters, credentials, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.store import changes
from pullkeeper.store.changes import Change
from pullkeeper.store.models import utcnow


def test_another_servers_changes_reach_the_index_in_order(
    make_server: Callable[..., Server],
) -> None:
    writer = make_server(sync=False)
    reader = make_server(sync=False, database_url=writer.settings.database_url)
    index = admission_index.Index(reader, 1.0)
    index.refresh()
    with writer.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "c1")
        clusters.put_namespace(session, SYSTEM, c, "shop", None)
        spec = credentials.CredentialSpec(
            name="wide",
            scope=credentials.resolve_scope(session, SYSTEM, "cluster", c, None, None),
            provider="custom",
            server="quay.io",
            username="robot",
            password="pw-1",
        )
        credentials.create(session, SYSTEM, writer.vault, spec)
    with writer.transaction() as session:
        policies.put(session, SYSTEM, c, None, {"allowlist": ["quay.io"]})
    with reader.reading() as session:
        revision, found = changes.since(session, 0)
    assert found[-1] == Change("policy", c.id)
    assert {Change("cluster", c.id), Change("namespace", c.id, None, "shop")} <= set(found)
    index.refresh()
    assert (index.builds, index.updates, index.revision) == (1, 1, revision)
    view = index.cluster("c1")
    assert view is not None
    assert view.view("shop").secrets_for("quay.io/x") == ["wide"]
    assert view.view("shop").policy.allowlist == ("quay.io",)
    with writer.db.session() as session:
        changes.prune(session, utcnow() + timedelta(days=1))
    with reader.reading() as session:
        assert changes.since(session, 0) == (revision, [Change("policy", c.id)])
        assert changes.missed(session, 0) and not changes.missed(session, revision)
