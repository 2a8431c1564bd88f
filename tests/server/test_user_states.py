"""Disabling, enabling and deleting users through the REST API; Admin and Viewer exclusive."""

from __future__ import annotations

import pytest

from pullkeeper.services import auth
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.errors import Conflict, Unauthorized
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from tests.server.conftest import Env, assert_error, user_password


def _login(env: Env, username: str) -> str:
    body = env.anon.ok(
        "POST", "login", json={"username": username, "password": user_password(username)}
    )
    token: str = body["token"]
    return token


def test_disabling_revokes_every_token_and_login_is_refused_until_enabled(env: Env) -> None:
    env.cluster()
    team = env.project("team")
    alice, issued = env.user("alice")
    env.member(team["id"], "alice", "member")
    logged_in = _login(env, "alice")
    for token in (issued, logged_in):  # both now in the token cache
        assert env.api(token).ok("GET", "me")["username"] == "alice"

    done = env.admin.ok("POST", "users/alice/disable")
    assert (done["username"], done["disabled"], done["revoked_tokens"]) == ("alice", True, 2)
    # At once, cached or not.
    for token in (issued, logged_in):
        assert_error(env.api(token).get("me"), 401)
    r = env.anon.post("login", json={"username": "alice", "password": user_password("alice")})
    assert_error(r, 403, message="the user alice is disabled; an admin can enable it again")
    # A wrong password says only that, as for anyone.
    r = env.anon.post("login", json={"username": "alice", "password": "pw-wrong-one-Rt5"})
    assert_error(r, 401, message="wrong user name or password")
    # Kept: listed as disabled, still a member, their audit history there.
    listed = {u["username"]: u for u in env.admin.ok("GET", "users")["items"]}
    assert listed["alice"]["disabled"] is True and listed["admin"]["disabled"] is False
    shown = env.admin.ok("GET", f"users/{alice['id']}")
    assert [(p["name"], p["role"]) for p in shown["projects"]] == [("team", "member")]
    assert shown["valid_tokens"] == 0
    assert [e["action"] for e in env.audit(user="alice")] == ["token.create", "user.login"]
    [disabled] = env.audit(action="user.disable")
    assert (disabled["actor"], disabled["object_id"]) == ("admin", alice["id"])
    assert disabled["after"]["revoked_tokens"] == 2 and disabled["after"]["disabled"] is True

    enabled = env.admin.ok("POST", "users/alice/enable")
    assert enabled["disabled"] is False
    for token in (issued, logged_in):  # enabling brings no old token back
        assert_error(env.api(token).get("me"), 401)
    assert env.api(_login(env, "alice")).ok("GET", "me")["username"] == "alice"
    [event] = env.audit(action="user.enable")
    assert (event["before"]["disabled"], event["after"]["disabled"]) == (True, False)


def test_another_server_refuses_a_disabled_users_tokens(env: Env) -> None:
    """A second server on the store, as a second `pullkeeper serve` would be, without a token
    cache: it refuses the revoked tokens, and one issued after the disable (a login racing
    it) by the user check."""
    alice, issued = env.user("alice")
    other = Server(Settings(data=env.data, database_url=env.database_url, auth_cache_seconds=0))
    try:
        assert other.authenticate(issued, "10.0.0.9").username == "alice"
        env.admin.ok("POST", "users/alice/disable")
        with pytest.raises(Unauthorized):
            other.authenticate(issued, "10.0.0.9")
        with env.server.transaction() as session:
            row = auth.get_user(session, alice["id"])
            late = auth.issue_token(session, SYSTEM, row, "late", None).token
        for server in (other, env.server):
            with pytest.raises(Unauthorized):
                server.authenticate(late, "10.0.0.9")
    finally:
        other.close()


def test_deleting_removes_memberships_and_tokens_and_keeps_the_audit_trail(env: Env) -> None:
    env.cluster()
    a, b = env.project("team-a"), env.project("team-b")
    bob, issued = env.user("bob", login=True)
    env.member(a["id"], "bob", "owner")
    env.member(b["id"], "bob", "viewer")
    revoked = env.api(issued).ok("POST", "tokens", json={"name": "ci"})
    env.api(issued).ok("DELETE", f"tokens/{revoked['id']}", status=204)

    shown = env.admin.ok("GET", "users/bob")
    assert [(p["name"], p["cluster"], p["role"]) for p in shown["projects"]] == [
        ("team-a", "c1", "owner"),
        ("team-b", "c1", "viewer"),
    ]
    assert shown["valid_tokens"] == 1  # the revoked one does not count
    assert env.api(issued).ok("GET", "users/bob")["username"] == "bob"  # one's own

    assert env.admin.delete("users/bob").status_code == 204
    assert_error(env.admin.get(f"users/{bob['id']}"), 404)
    assert_error(env.api(issued).get("me"), 401)
    members = env.admin.ok("GET", f"projects/{a['id']}/members")["items"]
    assert "bob" not in [m["user"] for m in members]
    r = env.anon.post("login", json={"username": "bob", "password": user_password("bob")})
    assert_error(r, 401, message="wrong user name or password")
    [event] = env.audit(action="user.delete")
    assert event["object_id"] == bob["id"] and event["after"] is None
    assert event["before"]["projects"] == ["team-a", "team-b"]
    assert event["before"]["valid_tokens"] == 1
    # What bob did stays in the trail under his name.
    assert {e["action"] for e in env.audit(user="bob")} >= {"user.login", "token.create"}
    # The name is free again.
    env.user("bob")


def test_no_one_disables_or_deletes_themselves_or_the_last_active_admin(env: Env) -> None:
    assert_error(env.admin.post("users/admin/disable"), 422, message="you cannot disable yourself")
    assert_error(env.admin.delete("users/admin"), 422, message="you cannot delete yourself")

    _, ivy = env.user("ivy", admin=True)
    env.api(ivy).ok("POST", "users/admin/disable")  # ivy is left
    with env.server.transaction() as session:  # an actor of no user: the rule still holds
        last = auth.get_user(session, "ivy")
        with pytest.raises(Conflict, match="ivy is the last active admin"):
            auth.disable_user(session, SYSTEM, last)
        with pytest.raises(Conflict, match="ivy is the last active admin"):
            auth.delete_user(session, SYSTEM, last)
    # A disabled admin is no active admin, and may go.
    assert env.api(ivy).delete("users/admin").status_code == 204
    trail = env.api(ivy).ok("GET", "audit", params={"action": "user.delete"})["items"]
    assert [(e["actor"], e["before"]["username"]) for e in trail] == [("ivy", "admin")]


def test_only_admins_change_users_and_see_others(env: Env) -> None:
    _, alice = env.user("alice")
    env.user("bob")
    for method, path in (
        ("POST", "users/bob/disable"),
        ("POST", "users/bob/enable"),
        ("DELETE", "users/bob"),
        ("GET", "users/bob"),
    ):
        assert_error(env.api(alice).call(method, path), 403)
    assert_error(env.admin.post("users/nobody/disable"), 404)
    assert env.admin.ok("GET", "users/bob")["disabled"] is False


def test_node_tokens_an_admin_issued_hold_the_deletion_back_not_the_disabling(env: Env) -> None:
    env.cluster("prod")
    _, ivy = env.user("ivy", admin=True)
    issued = env.api(ivy).ok("POST", "clusters/prod/node-tokens", status=201, json={})
    env.secrets.add(issued["token"])
    assert_error(
        env.admin.delete("users/ivy"),
        409,
        message="ivy issued node tokens still valid for the clusters prod",
    )
    env.admin.ok("POST", "users/ivy/disable")
    # The node token is the cluster's: it still reads (no credential yet, so none).
    node = env.api(issued["token"])
    read = node.ok("GET", "node-credentials", params={"cluster": "prod", "image": "gcr.io/p/a"})
    assert read["auth"] == []
    assert_error(env.api(ivy).get("me"), 401)
    env.admin.ok("DELETE", f"clusters/prod/node-tokens/{issued['id']}", status=204)
    assert env.admin.delete("users/ivy").status_code == 204


def test_admin_and_viewer_are_one_choice(env: Env) -> None:
    r = env.admin.post(
        "users",
        json={"username": "dan", "password": user_password("dan"), "admin": True, "viewer": True},
    )
    assert_error(r, 422, "invalid", field="role", message="an admin or a viewer, not both")
    assert "dan" not in [u["username"] for u in env.admin.ok("GET", "users")["items"]]
    viewer, _ = env.user("dan", viewer=True)
    assert (viewer["admin"], viewer["viewer"]) == (False, True)
