"""A cloud credential's new token reaches its delivered Secrets on the real API server in
place: the same Secret objects (uid), each rewritten once, and nothing written when the
cloud gives the same token again.

The ECR token comes from the AWS stand-in (tests/cloud/aws.py), the refresher runs with its
own clock (no waiting for half a token's life), and the sync is the running one of `world`.
Writes are counted from the API server's audit log (requests of user pullkeeper).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from pullkeeper.core.cloud import Token
from pullkeeper.services import cloud_exchange, clusters, credentials
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.token_refresh import Refresher
from pullkeeper.store.models import Credential, utcnow
from tests.cloud import aws
from tests.cloud.aws import Aws
from tests.kube.real import RealCluster
from tests.sync.conftest import World, eventually, password_of

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
KEY = ("AKIASYNC000000000000", "sync-secret-access-key-1")
NAMESPACES = ("a", "b", "c")
# Longer than the sync takes to deliver a change (it is told of one at once and rewrites
# within a pass): the positive control below shows a new token's writes all land within it.
SETTLE = 5.0


@pytest.fixture
def cloud(world: World) -> Iterator[Aws]:
    with aws.serve() as stand_in:
        world.server.settings.cloud_aws_endpoint = stand_in.url
        yield stand_in


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def ecr_credential(world: World, name: str) -> str:
    """A cluster-scoped credential with an AWS identity, its first token made (as the API's
    create does)."""
    login = cloud_exchange.login(world.server, "ecr", ECR, "aws", {"access_key_id": KEY[0]}, KEY[1])
    with world.server.transaction() as session:
        cluster = clusters.get_cluster(session, SYSTEM, "c1")
        spec = credentials.CredentialSpec(
            name=name,
            scope=credentials.resolve_scope(session, SYSTEM, "cluster", cluster, None, None),
            provider="ecr",
            server=ECR,
            username="",
            cloud=login,
        )
        return credentials.create(session, SYSTEM, world.server.vault, spec).id


def due_now(world: World, credential_id: str, clock: Clock) -> None:
    """Move the refresher's clock to the credential's refresh time."""
    with world.server.reading() as session:
        cred = session.get(Credential, credential_id)
        assert cred is not None and cred.token_refresh_at is not None
        clock.now = cred.token_refresh_at


def delivered(world: World, name: str) -> dict[str, dict[str, Any]]:
    return {ns: s for (ns, n), s in world.secrets().items() if n == name}


def passwords(world: World, name: str) -> set[str]:
    return {password_of(s) for s in delivered(world, name).values()}


def test_a_new_token_rewrites_each_delivered_secret_in_place_once(
    world: World, real_kube: RealCluster, cloud: Aws
) -> None:
    for name in NAMESPACES:
        world.namespace(name)
    cid = ecr_credential(world, "ecr")
    where = sorted([*NAMESPACES, "default"])
    eventually(lambda: world.where("ecr") == where, what="delivery")
    assert passwords(world, "ecr") == {cloud.issued[-1]}
    loop = world.loop()
    eventually(lambda: loop.writes == len(where), what="a write per Secret")
    before = delivered(world, "ecr")

    clock = Clock()
    refresher = Refresher(world.server, clock=clock, leading=lambda: True)
    due_now(world, cid, clock)
    real_kube.reset_counts()
    assert refresher.run_once() == {"refreshed": 1}
    new = cloud.issued[-1]
    eventually(lambda: passwords(world, "ecr") == {new}, what="the new token")
    eventually(
        lambda: real_kube.count("write", "secrets") >= len(where), what="the audit log's writes"
    )
    time.sleep(SETTLE)  # and no more writes come
    after = delivered(world, "ecr")
    for ns in where:
        assert real_kube.count("update", "secrets", ns) == 1, ns
        assert after[ns]["metadata"]["uid"] == before[ns]["metadata"]["uid"], ns
        assert after[ns]["metadata"]["resourceVersion"] != before[ns]["metadata"]["resourceVersion"]
    assert real_kube.count("write", "secrets") == len(where)  # no create, no delete
    assert loop.writes == 2 * len(where)


def test_the_same_token_again_writes_nothing(
    world: World, real_kube: RealCluster, cloud: Aws
) -> None:
    for name in NAMESPACES:
        world.namespace(name)
    cid = ecr_credential(world, "ecr")
    where = sorted([*NAMESPACES, "default"])
    loop = world.loop()
    eventually(lambda: loop.writes == len(where), what="a write per Secret")
    versions = {ns: s["metadata"]["resourceVersion"] for ns, s in delivered(world, "ecr").items()}

    clock = Clock()
    given = Token("AWS", cloud.issued[-1], utcnow(), utcnow() + timedelta(hours=12))
    again = Refresher(world.server, clock=clock, leading=lambda: True, exchange=lambda *_: given)
    due_now(world, cid, clock)
    real_kube.reset_counts()
    assert again.run_once() == {"unchanged": 1}
    time.sleep(SETTLE)
    assert real_kube.count("write", "secrets") == 0
    assert loop.writes == len(where)
    assert {
        ns: s["metadata"]["resourceVersion"] for ns, s in delivered(world, "ecr").items()
    } == versions

    # The positive control: a new token in the same way is written everywhere within SETTLE.
    renewed = Refresher(world.server, clock=clock, leading=lambda: True)
    due_now(world, cid, clock)
    assert renewed.run_once() == {"refreshed": 1}
    eventually(
        lambda: real_kube.count("update", "secrets") == len(where),
        timeout=SETTLE,
        what="the new token's writes",
    )
    assert passwords(world, "ecr") == {cloud.issued[-1]}
