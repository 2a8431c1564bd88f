"""ServiceAccount mode: delivered Secrets added to ServiceAccounts, keeping what users added."""

from __future__ import annotations

from typing import Any

from pullkeeper.services import clusters, policies
from pullkeeper.services.actor import SYSTEM
from tests.sync.conftest import World, eventually

ADDED = "pullkeeper.io/image-pull-secrets"


def _policy(world: World, project: str | None = None, **values: Any) -> None:
    with world.server.transaction() as session:
        c = clusters.get_cluster(session, SYSTEM, "c1")
        p = clusters.get_project(session, SYSTEM, project, c) if project else None
        policies.put(session, SYSTEM, c, p, values)


def _pulls(world: World, namespace: str, name: str = "default") -> list[str]:
    account = world.kubes["c1"].get("serviceaccounts", name, namespace)
    assert account is not None
    return [e["name"] for e in account.get("imagePullSecrets") or []]


def _users_entry(world: World, namespace: str, secret: str) -> str:
    """The default ServiceAccount (made by the cluster's serviceaccount controller) as a user
    left it: one imagePullSecrets entry of theirs. Returns its resourceVersion."""
    kube = world.kubes["c1"]
    account = eventually(
        lambda: kube.get("serviceaccounts", "default", namespace), what="the default account"
    )
    done = kube.replace("serviceaccounts", {**account, "imagePullSecrets": [{"name": secret}]})
    version: str = done["metadata"]["resourceVersion"]
    return version


def test_selected_accounts_get_the_secrets_and_keep_their_own(world: World) -> None:
    kube = world.kubes["c1"]
    world.namespace("shop", {"pullkeeper.io/project": "web"})
    # A user's own entry, there before pullkeeper.
    _users_entry(world, "shop", "theirs")
    kube.create("serviceaccounts", {"metadata": {"name": "builder", "namespace": "shop"}})
    wide = world.cred("wide")
    world.cred("web-pull", "project", project="web", server="quay.io")
    eventually(lambda: world.where("wide") == ["default", "shop"])
    assert _pulls(world, "shop") == ["theirs"]  # the mode is off by default

    _policy(world, service_accounts=["default"])
    eventually(lambda: _pulls(world, "shop") == ["theirs", "web-pull", "wide"], what="added")
    assert _pulls(world, "shop", "builder") == []
    assert _pulls(world, "default") == ["wide"]
    shop = kube.get("serviceaccounts", "default", "shop")
    assert shop is not None and shop["metadata"]["annotations"][ADDED] == "web-pull,wide"

    # The project says every account, those created later too; the cluster keeps "default".
    _policy(world, "web", service_accounts=["*"])
    eventually(lambda: _pulls(world, "shop", "builder") == ["web-pull", "wide"])
    kube.create("serviceaccounts", {"metadata": {"name": "later", "namespace": "shop"}})
    eventually(lambda: _pulls(world, "shop", "later") == ["web-pull", "wide"], what="later one")

    # A credential that goes leaves every list; the user's entry stays.
    world.delete(wide)
    eventually(lambda: _pulls(world, "shop") == ["theirs", "web-pull"])
    eventually(lambda: _pulls(world, "default") == [])

    # Turned off for the project: pullkeeper's entries go, the user's stay.
    _policy(world, "web", service_accounts=[])
    eventually(lambda: _pulls(world, "shop") == ["theirs"] and _pulls(world, "shop", "later") == [])
    shop = kube.get("serviceaccounts", "default", "shop")
    assert shop is not None and ADDED not in (shop["metadata"].get("annotations") or {})


def test_a_user_entry_of_the_same_name_stays_theirs(world: World) -> None:
    kube = world.kubes["c1"]
    world.namespace("shop")
    theirs = _users_entry(world, "shop", "wide")
    _policy(world, service_accounts=["default"])
    cid = world.cred("wide")
    eventually(lambda: world.where("wide") == ["default", "shop"])
    eventually(lambda: _pulls(world, "default") == ["wide"])
    loop = world.loop()
    writes = loop.writes
    # Nothing to add in shop: no write there, and none later either.
    eventually(lambda: loop.passes > 0)
    assert _pulls(world, "shop") == ["wide"]
    world.delete(cid)
    eventually(lambda: world.where("wide") == [] and _pulls(world, "default") == [])
    # Removing pullkeeper's credential does not remove the user's own entry of that name.
    assert _pulls(world, "shop") == ["wide"]
    shop = kube.get("serviceaccounts", "default", "shop")
    assert shop is not None and shop["metadata"]["resourceVersion"] == theirs, "never written"
    assert loop.writes > writes
