"""Node tokens and the node credentials they read: a cluster's credentials of cluster scope,
answered as the kubelet's keyring would use them; every other route refuses a node token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from pullkeeper.store.models import Credential
from tests.server.conftest import Api, Env, assert_error

CLUSTER_PASSWORD = "cluster-pw-Vx83kq"
NAMESPACE_PASSWORD = "namespace-pw-Hd71pz"
PROJECT_PASSWORD = "project-pw-Qm29wd"
OTHER_CLUSTER_PASSWORD = "other-pw-Lc55rt"


def node_token(env: Env, cluster: str = "c1", **body: Any) -> dict[str, Any]:
    issued: dict[str, Any] = env.admin.ok(
        "POST", f"clusters/{cluster}/node-tokens", status=201, json=body
    )
    env.secrets.add(issued["token"])
    return issued


def read(node: Api, image: str, cluster: str = "c1", **params: str) -> Any:
    return node.get("node-credentials", params={"cluster": cluster, "image": image, **params})


@pytest.fixture
def world(env: Env) -> dict[str, Any]:
    """c1 with a credential for quay.io in each scope, c2 with one of its own."""
    env.cluster()
    project = env.project("team")
    env.namespace("ns1", project["id"])
    ids = {
        "cluster": env.cred("quay", server="quay.io", password=CLUSTER_PASSWORD)["id"],
        "namespace": env.cred(
            "quay-ns",
            scope="namespace",
            namespace="ns1",
            server="quay.io",
            password=NAMESPACE_PASSWORD,
        )["id"],
        "project": env.cred(
            "quay-team",
            scope="project",
            project=project["id"],
            provider="quay",
            server=None,
            password=PROJECT_PASSWORD,
        )["id"],
        "hub": env.cred(
            "hub", server="https://index.docker.io/v1/", provider="dockerhub", password="hub-pw-1"
        )["id"],
    }
    env.cluster("c2")
    env.cred("quay-c2", cluster="c2", server="quay.io", password=OTHER_CLUSTER_PASSWORD)
    return ids


def test_a_node_reads_the_clusters_credentials_of_cluster_scope(
    env: Env, world: dict[str, Any]
) -> None:
    issued = node_token(env, name="pool-a")
    assert issued["cluster"] == "c1" and issued["expires_at"] is None
    node = env.api(issued["token"])
    response = read(node, "quay.io/team/app")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "cluster": "c1",
        "image": "quay.io/team/app",
        "cache_key_type": "Registry",
        "auth": [{"glob": "quay.io", "username": "robot", "password": CLUSTER_PASSWORD}],
        "expires_at": None,
    }
    # Docker Hub's fallback key serves a Docker Hub image; an image of no key gets nothing.
    hub = read(node, "docker.io/library/nginx").json()
    assert hub["auth"] == [{"glob": "index.docker.io", "username": "robot", "password": "hub-pw-1"}]
    assert read(node, "gcr.io/p/app").json()["auth"] == []
    # Global: every credential the kubelet will reuse the answer for.
    every = read(node, "gcr.io/p/app", cache_key_type="Global").json()["auth"]
    assert {a["glob"] for a in every} == {"quay.io", "index.docker.io"}

    reads = env.audit(action="credential.read_secret")  # newest first
    assert {e["actor"] for e in reads} == {f"node-token:{issued['id']}"}
    # quay.io's, Docker Hub's, and both for Global; none for gcr.io.
    assert sorted(e["object_id"] for e in reads) == sorted([world["cluster"], world["hub"]] * 2)
    assert reads[-1]["after"] == {"cluster": "c1", "image": "quay.io/team/app", "by": "node token"}
    [created] = env.audit(action="node_token.create")
    assert created["object_id"] == issued["id"]
    assert created["after"] == {
        "cluster": "c1",
        "name": "pool-a",
        "expires_at": None,
        "revoked": False,
    }
    for event in env.audit():
        assert issued["token"] not in str(event)


def test_a_cloud_tokens_expiry_is_in_the_answer(env: Env, world: dict[str, Any]) -> None:
    expires = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with env.server.transaction() as session:
        session.execute(
            update(Credential)
            .where(Credential.id == world["cluster"])
            .values(token_issued_at=expires - timedelta(hours=12), token_expires_at=expires)
        )
    node = env.api(node_token(env)["token"])
    assert read(node, "quay.io/a").json()["expires_at"] == expires.isoformat()


def test_every_other_route_refuses_a_node_token(env: Env, world: dict[str, Any]) -> None:
    node = env.api(node_token(env)["token"])
    for method, path in [
        ("GET", "clusters"),
        ("GET", "clusters/c1"),
        ("GET", "credentials"),
        ("GET", f"credentials/{world['cluster']}/dockerconfigjson"),
        ("GET", "tokens"),
        ("POST", "tokens"),
        ("GET", "clusters/c1/node-tokens"),
        ("POST", "clusters/c1/node-tokens"),
        ("GET", "audit"),
    ]:
        assert_error(
            node.call(method, path, json={} if method == "POST" else None),
            403,
            message="a node token only reads its cluster's node credentials",
        )


def test_node_credentials_refuse_a_users_token(env: Env, world: dict[str, Any]) -> None:
    assert_error(read(env.admin, "quay.io/a"), 403, message="only a node token reads node")
    assert_error(read(env.anon, "quay.io/a"), 401)


def test_a_node_token_reads_its_own_cluster_only(env: Env, world: dict[str, Any]) -> None:
    node = env.api(node_token(env)["token"])
    assert_error(
        read(node, "quay.io/a", cluster="c2"),
        403,
        message="this node token is for cluster 'c1', not 'c2'",
    )
    own = env.api(node_token(env, "c2")["token"])
    assert read(own, "quay.io/a", cluster="c2").json()["auth"] == [
        {"glob": "quay.io", "username": "robot", "password": OTHER_CLUSTER_PASSWORD}
    ]
    assert_error(read(node, "Quay.io/A"), 422, field="image")


def test_revoked_expired_and_deleted_tokens_are_refused(env: Env, world: dict[str, Any]) -> None:
    issued = node_token(env, name="n1")
    node = env.api(issued["token"])
    assert read(node, "quay.io/a").status_code == 200
    listed = env.admin.ok("GET", "clusters/c1/node-tokens")["items"]
    assert [(t["id"], t["name"], t["created_by"], t["revoked"]) for t in listed] == [
        (issued["id"], "n1", "admin", False)
    ]
    # Node tokens are the cluster's, not in their issuer's own list.
    assert issued["id"] not in [t["id"] for t in env.admin.ok("GET", "tokens")["items"]]
    assert_error(env.admin.delete(f"tokens/{issued['id']}"), 404)

    env.admin.ok("DELETE", f"clusters/c1/node-tokens/{issued['id']}", status=204)
    assert_error(read(node, "quay.io/a"), 401)
    assert env.admin.ok("GET", "clusters/c1/node-tokens")["items"][0]["revoked"] is True
    [revoked] = env.audit(action="node_token.revoke")
    assert (revoked["before"]["revoked"], revoked["after"]["revoked"]) == (False, True)
    assert_error(env.admin.delete(f"clusters/c2/node-tokens/{issued['id']}"), 404)

    deleted = env.api(node_token(env, "c2")["token"])
    assert read(deleted, "quay.io/a", cluster="c2").status_code == 200
    env.admin.ok("DELETE", "clusters/c2", status=204)
    assert_error(read(deleted, "quay.io/a", cluster="c2"), 401)


def test_only_admins_manage_node_tokens(env: Env, world: dict[str, Any]) -> None:
    # A user with no role in the cluster does not see it; a viewer sees it, but no more.
    _, token = env.quick_user("bob")
    bob = env.api(token)
    assert_error(bob.post("clusters/c1/node-tokens", json={}), 404)
    assert_error(bob.get("clusters/c1/node-tokens"), 404)
    _, viewer_token = env.quick_user("vera", viewer=True)
    viewer = env.api(viewer_token)
    assert_error(viewer.post("clusters/c1/node-tokens", json={}), 403, message="only an admin")
    assert_error(viewer.get("clusters/c1/node-tokens"), 403, message="only an admin")


def test_the_web_pages_refuse_a_node_token_as_a_session(env: Env, world: dict[str, Any]) -> None:
    issued = node_token(env)
    env.client.cookies.set("pk_session", f"{issued['id']}.{issued['token']}")
    try:
        response = env.client.get("/credentials", headers={"Accept": "text/html"})
    finally:
        env.client.cookies.clear()
    assert response.status_code == 403, response.text
    assert "a node token only reads its cluster" in response.text
    assert CLUSTER_PASSWORD not in response.text


def test_a_password_reset_of_the_issuer_leaves_the_clusters_node_tokens(
    env: Env, world: dict[str, Any]
) -> None:
    _, root_token = env.user("root2", admin=True)
    issued = env.api(root_token).ok("POST", "clusters/c1/node-tokens", status=201, json={})
    env.secrets.add(issued["token"])
    reset = env.admin.ok(
        "PUT", "users/root2/password", json={"password": "a-new-password-for-root2"}
    )
    assert reset["revoked_tokens"] == 1  # root2's own, not the node token
    assert read(env.api(issued["token"]), "quay.io/a").status_code == 200
    assert_error(env.api(root_token).get("clusters"), 401)
