"""Schema migrations over a store that holds data: what a later revision derives is backfilled."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from pullkeeper.store import db
from pullkeeper.store.models import Base
from tests.server.conftest import Env


def test_supersession_survives_a_downgrade_and_upgrade_of_the_slot_column(env: Env) -> None:
    env.cluster()
    project = env.project("team")
    env.namespace("ns1", project["id"])
    old = env.cred("old", scope="project", project=project["id"], server="quay.io")
    new = env.cred("new", scope="project", project=project["id"], provider="quay", server=None)
    other_ns = env.cred("ns-quay", scope="namespace", namespace="ns1", server="quay.io")
    before = env.admin.ok("GET", "credentials")["items"]
    assert {c["name"]: c["superseded_by"] for c in before} == {
        "new": None,
        "ns-quay": None,
        "old": new["id"],
    }

    engine = env.server.db.engine
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM credentials")).keys()
        assert "slot" not in columns
    env.server.db.engine.dispose()  # pooled SQLite connections keep the old table layout
    db.upgrade(engine)

    with engine.connect() as conn:
        slots = dict(conn.execute(text("SELECT name, slot FROM credentials")).all())
    cluster_id = old["cluster_id"]
    assert slots == {
        "old": f"{cluster_id}/project/{project['id']}//quay.io",
        "new": f"{cluster_id}/project/{project['id']}//quay.io",
        "ns-quay": f"{cluster_id}/namespace//ns1/quay.io",
    }
    assert env.admin.ok("GET", "credentials")["items"] == before
    assert other_ns["superseded_by"] is None


def test_the_check_history_starts_with_each_credentials_last_check(env: Env) -> None:
    env.cluster()
    checked = env.cred("checked", server="registry.example.com")
    env.cred("unchecked", server="registry.example.org")
    engine = env.server.db.engine
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE credentials SET check_status = 'failing', check_cause = 'unauthorized', "
                "check_message = 'wrong user name or password', checked_at = :at WHERE id = :id"
            ),
            {"at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "id": checked["id"]},
        )
    env.server.db.engine.dispose()
    db.upgrade(engine)

    [first] = env.admin.ok("GET", f"credentials/{checked['id']}/checks")["items"]
    assert first == {
        "at": "2026-11-30T12:00:00+00:00",
        "kind": "login",
        "image": None,
        "by": "",
        "status": "failing",
        "cause": "unauthorized",
        "message": "wrong user name or password",
    }
    unchecked = env.admin.ok("GET", "credentials", params={"q": "unchecked"})["items"][0]
    assert env.admin.ok("GET", f"credentials/{unchecked['id']}/checks")["items"] == []


def test_the_migrated_schema_is_the_models_schema(env: Env) -> None:
    """Every column, index and key the models declare, and no other, is what the
    migrations made: a model changed without a migration (or the reverse) fails here."""
    with env.server.db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_users_are_enabled_after_the_disabled_column_comes(env: Env) -> None:
    """0019 adds users.disabled: every user there before is enabled, and can be disabled."""
    env.user("alice")
    engine = env.server.db.engine
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0018")
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM users")).keys()
        assert "disabled" not in columns
    env.server.db.engine.dispose()  # pooled SQLite connections keep the old table layout
    db.upgrade(engine)

    users = {u["username"]: u["disabled"] for u in env.admin.ok("GET", "users")["items"]}
    assert users == {"admin": False, "alice": False}
    assert env.admin.ok("POST", "users/alice/disable")["disabled"] is True


def test_clusters_keep_their_rows_across_the_sealed_kubeconfig_columns(env: Env) -> None:
    """0020 adds clusters.kubeconfig_key_id and kubeconfig_blob: clusters from before have
    no uploaded kubeconfig, and one can be uploaded after."""
    env.cluster("c1", kubeconfig="/etc/k.yaml")
    engine = env.server.db.engine
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0019")
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM clusters")).keys()
        assert "kubeconfig_blob" not in columns
    env.server.db.engine.dispose()  # pooled SQLite connections keep the old table layout
    db.upgrade(engine)

    shown = env.admin.ok("GET", "clusters/c1")
    assert (shown["kubeconfig"], shown["kubeconfig_uploaded"]) == ("/etc/k.yaml", False)
    config = (
        "clusters: [{name: c, cluster: {server: 'https://10.0.0.1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    put = env.admin.ok("PUT", "clusters/c1/kubeconfig", json={"content": config})
    assert (put["kubeconfig"], put["kubeconfig_uploaded"], put["context"]) == ("", True, "x")
