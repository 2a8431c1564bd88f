"""The sync keeps each cluster's Secrets as the store says, driven by watches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.real import RealCluster
from tests.sync.conftest import World, eventually, password_of

PROJECT = "pullkeeper.io/project"


def test_each_scope_reaches_its_namespaces(world: World) -> None:
    world.namespace("shop", {PROJECT: "web"})
    world.namespace("cart", {"field.cattle.io/projectId": "web"})
    world.namespace("tools")
    # Namespaces the cluster has become known to the store: a namespace credential can name one.
    wide = world.cred("wide")
    web = world.cred("web-pull", "project", project="web", server="quay.io")
    eventually(lambda: world.where("web-pull") == ["cart", "shop"], what="project delivery")
    eventually(lambda: world.where("wide") == ["cart", "default", "shop", "tools"])
    # Namespaces found in the cluster become known to the store: a credential can name one.
    only = eventually(lambda: _try_namespace_cred(world), what="shop known to the store")
    eventually(lambda: world.where("only-shop") == ["shop"])

    secret = world.secrets()[("shop", "web-pull")]
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "pullkeeper",
        "pullkeeper.io/credential": web,
    }
    assert secret["metadata"]["annotations"]["pullkeeper.io/content-hash"].startswith("hmac-")
    assert password_of(secret) == world.passwords["web-pull"]
    # kube-system is excluded from cluster-wide delivery by default.
    assert ("kube-system", "wide") not in world.secrets()
    statuses = eventually(lambda: world.status(wide) if len(world.status(wide)) == 4 else None)
    assert {state for state, _ in statuses.values()} == {"in_sync"}
    assert world.status(only) == {("c1", "shop"): ("in_sync", "")}


def _try_namespace_cred(world: World) -> str | None:
    from pullkeeper.services.errors import Invalid

    try:
        return world.cred("only-shop", "namespace", namespace="shop", server="ghcr.io")
    except Invalid:
        return None


def test_a_new_or_relabelled_namespace_gets_its_secrets(world: World) -> None:
    world.cred("web-pull", "project", project="web")
    world.cred("wide")
    world.namespace("shop", {PROJECT: "web"})
    eventually(lambda: world.where("web-pull") == ["shop"])
    world.namespace("later")
    eventually(lambda: "later" in world.where("wide"))
    assert "later" not in world.where("web-pull")
    # Relabel: `later` joins the project, then leaves it.
    kube = world.kubes["c1"]
    ns = kube.get("namespaces", "later")
    assert ns is not None
    ns["metadata"]["labels"][PROJECT] = "web"
    kube.replace("namespaces", ns)
    eventually(lambda: world.where("web-pull") == ["later", "shop"])
    ns = kube.get("namespaces", "later")
    assert ns is not None
    del ns["metadata"]["labels"][PROJECT]
    ns["metadata"]["labels"]["pullkeeper.io/exclude"] = "true"
    kube.replace("namespaces", ns)
    eventually(
        lambda: "later" not in world.where("web-pull") and "later" not in world.where("wide")
    )


def test_credential_changes_reach_every_copy(world: World) -> None:
    for name in ("a", "b", "c"):
        world.namespace(name)
    cid = world.cred("wide")
    eventually(lambda: world.where("wide") == ["a", "b", "c", "default"])
    world.change(cid, password="a-new-password-99", username="robot2")
    eventually(
        lambda: (
            {password_of(s) for (_, n), s in world.secrets().items() if n == "wide"}
            == {"a-new-password-99"}
        )
    )
    world.change(cid, state="inactive")
    eventually(lambda: world.where("wide") == [])
    world.change(cid, state="active")
    eventually(lambda: world.where("wide") == ["a", "b", "c", "default"])
    world.delete(cid)
    eventually(lambda: world.where("wide") == [])
    eventually(lambda: world.manager.statuses.of(cid) == [], what="statuses forgotten")


def test_hand_edits_and_deletions_are_repaired(world: World) -> None:
    world.namespace("shop")
    cid = world.cred("wide")
    eventually(lambda: ("shop", "wide") in world.secrets())
    kube = world.kubes["c1"]
    kube.delete("secrets", "wide", "shop")
    eventually(lambda: ("shop", "wide") in world.secrets(), what="a deleted Secret restored")
    edited = world.secrets()[("shop", "wide")]
    edited["data"][".dockerconfigjson"] = "e30="  # "{}"
    kube.replace("secrets", edited)
    eventually(
        lambda: (
            password_of(world.secrets()[("shop", "wide")]) == world.passwords["wide"]
            if ("shop", "wide") in world.secrets()
            else False
        ),
        what="an edited Secret restored",
    )
    eventually(lambda: world.status(cid).get(("c1", "shop"), ("",))[0] == "in_sync")


def test_an_unmanaged_secret_is_a_conflict_unless_adopted(world: World) -> None:
    world.namespace("shop")
    kube = world.kubes["c1"]
    theirs = {
        "metadata": {"name": "pull", "namespace": "shop"},
        "type": "Opaque",
        "data": {"x": "eQ=="},
    }
    kube.create("secrets", theirs)
    cid = world.cred("pull")
    eventually(lambda: world.status(cid).get(("c1", "shop"), ("",))[0] == "conflict")
    reason = world.status(cid)[("c1", "shop")][1]
    assert "did not create" in reason and "adopt" in reason
    untouched = kube.get("secrets", "pull", "shop")
    assert untouched is not None and untouched["type"] == "Opaque"
    assert untouched["data"] == {"x": "eQ=="}
    assert eventually(lambda: ("default", "pull") in world.secrets())

    kube.create("secrets", {**theirs, "metadata": {"name": "other", "namespace": "shop"}})
    adopter = world.cred("other", adopt=True)
    eventually(lambda: world.status(adopter).get(("c1", "shop"), ("",))[0] == "in_sync")
    taken = kube.get("secrets", "other", "shop")
    assert taken is not None and taken["type"] == "kubernetes.io/dockerconfigjson"


def _versions(world: World) -> dict[tuple[str, str], str]:
    return {slot: s["metadata"]["resourceVersion"] for slot, s in world.secrets().items()}


def test_a_resync_that_finds_nothing_to_do_writes_nothing(
    make_world: Callable[..., World], real_kube: RealCluster
) -> None:
    world = make_world(sync_resync_seconds=1)
    world.cluster("c1", real_kube)
    world.project("web")
    for i in range(20):
        world.namespace(f"ns-{i}", {PROJECT: "web" if i % 2 else "none"})
    world.cred("wide")
    world.cred("web-pull", "project", project="web")
    eventually(lambda: len(world.where("wide")) == 21 and len(world.where("web-pull")) == 10)
    loop = world.loop()
    eventually(lambda: loop.writes >= 31, what="a write per Secret")
    assert loop.writes == 31, "one write per Secret"
    before, passes = _versions(world), loop.passes
    # Several full resyncs: every Secret stays at the version the first write gave it.
    eventually(lambda: loop.passes >= passes + 3, timeout=15, what="three resyncs")
    assert _versions(world) == before
    assert loop.writes == 31


def test_a_resync_lists_and_writes_nothing_more_on_the_fake(
    make_world: Callable[..., World],
) -> None:
    """The request count the real server does not give: two lists a resync, no write."""
    world = make_world(sync_resync_seconds=1)
    fake = FakeApiServer().start()
    world.cluster("c1", fake)
    for i in range(20):
        world.namespace(f"ns-{i}")
    world.cred("wide")
    loop = world.loop()
    eventually(lambda: loop.writes == 21, what="one write per Secret")
    fake.reset_counts()
    before = fake.resource_version
    eventually(lambda: fake.count("list") >= 6, timeout=15, what="three resyncs")
    assert fake.count("write") == 0, [r for r in fake.requests if r.verb != "list"]
    assert fake.resource_version == before


def test_api_errors_are_reported_and_retried(fake_world: World) -> None:
    world = fake_world
    fake = world.kubes["c1"]
    assert isinstance(fake, FakeApiServer)
    world.namespace("locked")
    world.namespace("busy")
    fake.inject("POST", r"/namespaces/locked/secrets$", 403, times=None)
    fake.inject("POST", r"/namespaces/busy/secrets$", 429, times=2)
    cid = world.cred("wide")
    eventually(lambda: world.status(cid).get(("c1", "locked"), ("",))[0] == "error")
    _, reason = world.status(cid)[("c1", "locked")]
    assert "forbidden" in reason.lower() and "may not create secrets" in reason
    # Throttled twice, then delivered.
    eventually(lambda: ("busy", "wide") in world.secrets(), what="retried after 429")
    eventually(lambda: world.status(cid).get(("c1", "busy")) == ("in_sync", ""))
    fake.clear_injections()
    # A lost connection: the loop reconnects, lists again and carries on.
    fake.drop_connections(3)
    world.namespace("after-drop")
    eventually(lambda: ("after-drop", "wide") in world.secrets(), timeout=20)
    eventually(lambda: ("locked", "wide") in world.secrets(), timeout=20, what="403 healed")


def test_one_cluster_down_does_not_hold_up_another(
    make_world: Callable[..., World], real_kube: RealCluster
) -> None:
    world = make_world()
    world.cluster("c1", real_kube)
    down = FakeApiServer().start()
    world.cluster("c2", down)
    down.stop()  # registered, but its API server is gone
    world.namespace("shop")
    cid = world.cred("wide")
    other = world.cred("wide", cluster="c2")
    eventually(lambda: world.where("wide") == ["default", "shop"])
    with world.server.reading() as session:
        from pullkeeper.store.models import Credential

        cred = session.get(Credential, other)
        assert cred is not None
        from pullkeeper.services import sync

        status = sync.status_of(world.server, cred)
    assert status["cluster_error"] and "cannot reach the API server" in status["cluster_error"]
    assert status["items"] == []
    eventually(lambda: world.status(cid).get(("c1", "shop")) == ("in_sync", ""))


def test_a_project_created_after_its_labelled_namespaces_gets_them(world: World) -> None:
    from sqlalchemy import select

    from pullkeeper.store.models import Namespace, Project

    world.namespace("late-1", {PROJECT: "later"})
    world.namespace("late-2", {PROJECT: "later"})
    loop = world.loop()
    eventually(lambda: loop.passes > 0)
    pid = world.project("later")

    def recorded() -> list[str]:
        with world.server.reading() as session:
            rows = session.execute(
                select(Namespace.name)
                .join(Project, Project.id == Namespace.project_id)
                .where(Project.id == pid)
            )
            return sorted(r[0] for r in rows)

    eventually(lambda: recorded() == ["late-1", "late-2"], what="membership recorded")


def test_an_expired_watch_lists_only_its_own_kind_again(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture
) -> None:
    """A 410 Gone on one watch costs a list of that kind, not of all three (on a real
    cluster a busy kind, such as ServiceAccounts made by their controller, expires alone)."""
    caplog.set_level(logging.INFO, "pullkeeper.sync")
    world = make_world()
    fake = FakeApiServer(max_watch_seconds=1).start()  # each watch resumes every second
    world.cluster("c1", fake)
    world.namespace("shop")
    world.cred("wide")
    eventually(lambda: world.where("wide") == ["default", "shop"])
    fake.reset_counts()
    caplog.clear()
    # A short history and churn elsewhere: the versions the watches resume from get too old.
    fake.store.keep_history(20)
    for i in range(150):
        fake.create("configmaps", {"metadata": {"name": f"churn-{i}", "namespace": "default"}})
        time.sleep(0.02)
    world.namespace("later")
    eventually(lambda: world.where("wide") == ["default", "later", "shop"], timeout=20)
    watching = {
        "namespaces": "watching namespaces",
        "secrets": "watching the managed Secrets",
        "serviceaccounts": "watching ServiceAccounts",
    }

    def lists_and_expiries() -> list[tuple[int, int]]:
        expired = [r.message for r in caplog.records if "listing again" in r.message]
        return [
            (fake.count("list", resource), sum(what in m for m in expired))
            for resource, what in watching.items()
        ]

    # Each kind was listed once per expiry of its own watch, and some did expire.
    eventually(
        lambda: all(n == m for n, m in lists_and_expiries()) and lists_and_expiries()[0][1],
        what="one list per expired watch of that kind",
    )
