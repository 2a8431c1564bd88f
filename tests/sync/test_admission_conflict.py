"""The webhook never points a pod at a same-named Secret the sync found but does not manage."""

from __future__ import annotations

from pullkeeper.services import admission
from tests.admission.conftest import pull_secrets_added
from tests.sync.conftest import World, eventually


def test_a_conflicted_secret_is_not_added_to_pods(world: World) -> None:
    fake = world.kubes["c1"]
    world.namespace("shop")
    fake.create(
        "secrets",
        {
            "metadata": {"name": "pull", "namespace": "shop"},
            "type": "Opaque",
            "data": {"x": "eQ=="},
        },
    )
    cid = world.cred("pull", server="quay.io")
    eventually(lambda: world.status(cid).get(("c1", "shop"), ("",))[0] == "conflict")
    eventually(lambda: world.status(cid).get(("c1", "default"), ("",))[0] == "in_sync")
    hook = admission.start(world.server)
    try:
        eventually(lambda: hook.index.ready.is_set() and hook.index.cluster("c1") is not None)

        def secrets(namespace: str) -> list[str]:
            return pull_secrets_added(hook, "quay.io/team/app:v1", namespace)

        eventually(lambda: secrets("default") == ["pull"], what="delivered: added")
        assert secrets("shop") == []  # someone else's Secret of that name: not added
    finally:
        hook.index.stop()
