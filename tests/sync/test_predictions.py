"""What pullkeeper predicts for a namespace is what the sync then does there."""

from __future__ import annotations

from typing import Any

import pytest

from pullkeeper.services import clusters, credentials
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.errors import Conflict, Invalid
from tests.sync.conftest import World, eventually

PROJECT = "pullkeeper.io/project"


def _effective(world: World, namespace: str) -> dict[str, Any]:
    with world.server.reading() as session:
        cluster = clusters.get_cluster(session, SYSTEM, "c1")
        return credentials.effective(session, SYSTEM, cluster, namespace)


def test_one_name_from_two_scopes_is_refused_or_predicted_as_the_syncs_conflict(
    world: World,
) -> None:
    world.namespace("tools")

    def known() -> str | None:
        try:
            return world.cred("pull", "namespace", namespace="tools")
        except Invalid:  # not yet found in the cluster
            return None

    own = eventually(known, what="tools known to the store")
    # Known at creation: the name would meet `tools`' own in tools.
    with pytest.raises(Conflict, match="already lands in a namespace this one reaches"):
        world.cred("pull", server="quay.io")
    # Not known then: tools is in no project yet.
    shared = world.cred("pull", "project", project="web", server="quay.io")
    eventually(lambda: world.where("pull") == ["tools"])
    kube = world.kubes["c1"]
    ns = kube.get("namespaces", "tools")
    assert ns is not None
    ns["metadata"]["labels"][PROJECT] = "web"
    kube.replace("namespaces", ns)
    eventually(lambda: world.status(shared).get(("c1", "tools"), ("",))[0] == "conflict")
    _, reason = world.status(shared)[("c1", "tools")]
    predicted = _effective(world, "tools")
    assert [c["id"] for c in predicted["items"]] == [own]
    assert predicted["conflicts"] == [
        {"id": shared, "name": "pull", "scope": "project", "kept": own, "reason": reason}
    ]
    secret = world.secrets()[("tools", "pull")]
    assert secret["metadata"]["labels"]["pullkeeper.io/credential"] == own
