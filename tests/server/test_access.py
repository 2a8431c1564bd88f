"""Users, logins, API tokens (expiry, revocation), the login throttle, project members."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from pullkeeper.services import auth
from pullkeeper.services.errors import TooManyRequests, Unauthorized
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import ApiToken, LoginFailure, utcnow
from tests.server.conftest import Env, assert_error, user_password


def _expires_after(stamp: str, ttl: timedelta, before: datetime) -> None:
    """`stamp` is `ttl` after the token was issued: after `before`, taken just before the
    request that issued it, and before now."""
    assert before + ttl <= datetime.fromisoformat(stamp) <= utcnow() + ttl, stamp


def test_login_issues_a_token(env: Env) -> None:
    user, _ = env.user("alice")
    assert set(user) == {"id", "username", "admin", "viewer", "disabled", "created_at"}
    assert (user["username"], user["admin"], user["viewer"]) == ("alice", False, False)
    before = utcnow()
    r = env.anon.post("login", json={"username": "alice", "password": user_password("alice")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"token", "id", "expires_at"}
    assert body["token"].startswith("pk_") and len(body["token"]) >= 40
    _expires_after(body["expires_at"], timedelta(days=90), before)
    me = env.api(body["token"]).ok("GET", "me")
    assert me == {"username": "alice", "admin": False, "viewer": False, "projects": {}}
    tokens = env.api(body["token"]).ok("GET", "tokens")["items"]
    assert body["id"] in [t["id"] for t in tokens]
    assert all(set(t) == {"id", "name", "created_at", "expires_at", "revoked"} for t in tokens)
    assert body["token"] not in r.text.replace(body["token"], "", 1)  # shown once, in one place
    assert body["token"] not in env.api(body["token"]).get("tokens").text


@pytest.mark.settings(token_ttl_days=7)
def test_login_token_lifetime_follows_the_setting(env: Env) -> None:
    env.user("alice")
    before = utcnow()
    body = env.anon.ok(
        "POST", "login", json={"username": "alice", "password": user_password("alice")}
    )
    _expires_after(body["expires_at"], timedelta(days=7), before)


def test_wrong_password_or_unknown_user_is_401(env: Env) -> None:
    env.user("alice")
    wrong = env.anon.post("login", json={"username": "alice", "password": "pw-wrong-one-Rt5"})
    unknown = env.anon.post("login", json={"username": "nobody", "password": "pw-wrong-one-Rt5"})
    a = assert_error(wrong, 401, "unauthorized", field=None)
    b = assert_error(unknown, 401, "unauthorized", field=None)
    assert a["message"] == b["message"]  # no hint which of the two was wrong
    assert_error(env.anon.post("login", json={"username": "alice"}), 422, field="password")
    # No login event for refused logins, one for the right one.
    env.anon.ok("POST", "login", json={"username": "alice", "password": user_password("alice")})
    assert [e["actor"] for e in env.audit(action="user.login")] == ["alice"]


def test_five_failed_logins_a_minute_by_default(env: Env) -> None:
    env.user("alice")
    bad = {"username": "alice", "password": "pw-guess-Wq01"}
    good = {"username": "alice", "password": user_password("alice")}
    for _ in range(5):
        assert_error(env.anon.post("login", json=bad), 401)
    with env.server.reading() as session:
        first = session.execute(
            select(LoginFailure.id, LoginFailure.at).order_by(LoginFailure.at).limit(1)
        ).one()
    before = utcnow()
    r = env.anon.post("login", json=good)
    after = utcnow()
    assert_error(r, 429, "too_many_requests")
    # Retry-After: the seconds until the first failure is a minute old, rounded up.
    minute = timedelta(minutes=1)
    left_after, left_before = ((first.at + minute - t).total_seconds() for t in (after, before))
    assert left_after < int(r.headers["Retry-After"]) <= left_before + 1
    # Once it is, four failures are left in the minute, and alice logs in.
    with env.server.transaction() as session:
        session.execute(
            update(LoginFailure).where(LoginFailure.id == first.id).values(at=first.at - minute)
        )
    assert env.anon.post("login", json=good).status_code == 201


@pytest.mark.settings(login_attempts_per_minute=3)
def test_failed_logins_are_throttled_per_user_and_source(env: Env) -> None:
    env.user("alice")
    env.user("bob")
    good = {"username": "alice", "password": user_password("alice")}
    bad = {"username": "alice", "password": "pw-guess-Wq01"}
    home = env.client_from("10.1.1.1")
    for _ in range(3):
        assert_error(home.post("login", json=bad), 401)
    for body in (bad, good):
        r = home.post("login", json=body)
        assert_error(r, 429, "too_many_requests", field=None)
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 61
    # Another source, or another user from the same source, is not held back.
    assert env.client_from("10.2.2.2").post("login", json=good).status_code == 201
    bob = {"username": "bob", "password": user_password("bob")}
    assert home.post("login", json=bob).status_code == 201


@pytest.mark.settings(login_attempts_per_minute=3)
def test_a_successful_login_clears_the_failures(env: Env) -> None:
    env.user("alice")
    good = {"username": "alice", "password": user_password("alice")}
    bad = {"username": "alice", "password": "pw-guess-Wq01"}
    home = env.client_from("10.1.1.1")
    for _ in range(2):
        assert_error(home.post("login", json=bad), 401)
    assert home.post("login", json=good).status_code == 201
    for _ in range(3):
        assert_error(home.post("login", json=bad), 401)
    assert_error(home.post("login", json=bad), 429)


def test_expired_token_is_401(env: Env) -> None:
    _, token = env.user("alice")
    alice = env.api(token)
    before = utcnow()
    created = alice.ok("POST", "tokens", json={"name": "ci", "expires_in_days": 1})
    _expires_after(created["expires_at"], timedelta(days=1), before)
    ci = env.api(created["token"])
    assert ci.ok("GET", "me")["username"] == "alice"
    with env.server.transaction() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == created["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_error(ci.get("me"), 401, message="expired")
    assert_error(ci.get("clusters"), 401)
    # The user's other tokens still work.
    assert alice.ok("GET", "me")["username"] == "alice"


def test_revoked_token_is_401(env: Env) -> None:
    _, token = env.user("alice")
    _, bob_token = env.user("bob")
    alice = env.api(token)
    before = utcnow()
    created = alice.ok("POST", "tokens", json={"name": "laptop"})
    _expires_after(created["expires_at"], timedelta(days=90), before)
    listed = {t["id"]: t for t in alice.ok("GET", "tokens")["items"]}
    assert (listed[created["id"]]["name"], listed[created["id"]]["revoked"]) == ("laptop", False)
    # Someone else cannot revoke it, nor learn it exists.
    assert_error(env.api(bob_token).delete(f"tokens/{created['id']}"), 404)
    assert env.api(created["token"]).ok("GET", "me")["username"] == "alice"

    assert alice.delete(f"tokens/{created['id']}").status_code == 204
    assert_error(env.api(created["token"]).get("me"), 401)
    listed = {t["id"]: t for t in alice.ok("GET", "tokens")["items"]}
    assert listed[created["id"]]["revoked"] is True
    # Again: still gone, no second event.
    assert alice.delete(f"tokens/{created['id']}").status_code == 204
    assert len(env.audit(action="token.revoke")) == 1
    assert_error(alice.delete("tokens/nope"), 404)
    # An admin may revoke anyone's token; a revoked login token is refused too.
    login = env.anon.ok("POST", "login", json={"username": "bob", "password": user_password("bob")})
    assert env.admin.delete(f"tokens/{login['id']}").status_code == 204
    assert_error(env.api(login["token"]).get("me"), 401)
    assert env.api(bob_token).ok("GET", "me")["username"] == "bob"


def test_tokens_list_only_the_callers_own(env: Env) -> None:
    _, a = env.user("alice")
    _, b = env.user("bob")
    env.api(a).ok("POST", "tokens", json={"name": "a-extra"})
    names_a = [t["name"] for t in env.api(a).ok("GET", "tokens")["items"]]
    names_b = [t["name"] for t in env.api(b).ok("GET", "tokens")["items"]]
    assert sorted(names_a) == ["a-extra", "test"]
    assert names_b == ["test"]
    assert_error(
        env.api(a).post("tokens", json={"expires_in_days": 0}), 422, field="expires_in_days"
    )


def test_users(env: Env) -> None:
    alice, token = env.user("alice")
    env.user("vera", viewer=True)
    root, _ = env.user("root2", admin=True)
    assert (root["admin"], root["viewer"]) == (True, False)
    listed = env.admin.ok("GET", "users")["items"]
    assert [(u["username"], u["admin"], u["viewer"]) for u in listed] == [
        ("admin", True, False),
        ("alice", False, False),
        ("root2", True, False),
        ("vera", False, True),
    ]
    assert all("password" not in str(u) and "hash" not in str(u) for u in listed)
    good = {"password": "long-enough-pw"}
    assert_error(env.admin.post("users", json={"username": "alice", **good}), 409, field="username")
    for bad in ("Alice", "al_ice", "-a", "a" * 64):
        r = env.admin.post("users", json={"username": bad, **good})
        assert_error(r, 422, field="username")
    r = env.admin.post("users", json={"username": "short", "password": "1234567"})
    assert_error(r, 422, field="password")
    assert_error(env.api(token).post("users", json={"username": "x", **good}), 403)
    assert_error(env.api(token).get("users"), 403)
    assert len(env.admin.ok("GET", "users")["items"]) == 4
    assert env.admin.ok("GET", "users")["items"][1]["id"] == alice["id"]


def test_an_admin_resets_another_users_password(env: Env) -> None:
    alice, token = env.user("alice", login=True)
    _, other = env.user("alice-ci")
    new = "alice-new-passphrase-1"
    assert env.api(token).ok("GET", "me")["username"] == "alice"

    # Not an admin, not a good password, not oneself, nobody: refused, nothing changed.
    assert_error(env.api(other).put("users/alice/password", json={"password": new}), 403)
    assert_error(
        env.admin.put("users/alice/password", json={"password": "too-short"}), 422, field="password"
    )
    assert_error(
        env.admin.put("users/alice/password", json={"password": "ALICE"}), 422, field="password"
    )
    assert_error(env.admin.put("users/nobody/password", json={"password": new}), 404)
    assert_error(env.admin.put("users/admin/password", json={"password": new}), 422)
    assert env.api(token).ok("GET", "me")["username"] == "alice"

    done = env.admin.ok("PUT", f"users/{alice['id']}/password", json={"password": new})
    assert done == {"user": "alice", "revoked_tokens": 1}
    assert_error(env.api(token).get("me"), 401)
    old = env.anon.post("login", json={"username": "alice", "password": user_password("alice")})
    assert_error(old, 401)
    assert env.anon.ok("POST", "login", json={"username": "alice", "password": new})["token"]
    [event] = env.audit(action="user.password_reset")
    assert (event["actor"], event["after"]) == ("admin", {"user": "alice", "revoked_tokens": 1})
    assert new not in str(env.audit())


def test_project_members(env: Env) -> None:
    env.cluster("c1")
    web = env.project("web")
    _, owner = env.user("olga")
    env.user("max")
    env.user("vic")
    assert env.admin.ok("GET", "projects/web/members") == {"items": []}
    assert env.admin.ok("PUT", "projects/web/members/olga", json={"role": "owner"}) == {
        "user": "olga",
        "role": "owner",
    }
    assert env.api(owner).ok("GET", "me")["projects"] == {web["id"]: "owner"}
    # The owner manages the members.
    olga = env.api(owner)
    assert olga.ok("PUT", f"projects/{web['id']}/members/max", json={"role": "member"}) == {
        "user": "max",
        "role": "member",
    }
    olga.ok("PUT", "projects/web/members/vic", json={"role": "viewer"})
    olga.ok("PUT", "projects/web/members/vic", json={"role": "member"})  # a change, not a second
    assert olga.ok("GET", "projects/web/members")["items"] == [
        {"user": "max", "role": "member", "disabled": False},
        {"user": "olga", "role": "owner", "disabled": False},
        {"user": "vic", "role": "member", "disabled": False},
    ]
    # A member an admin disabled stays, marked so.
    vic = env.admin.ok("GET", "users/vic")["id"]
    env.admin.ok("POST", f"users/{vic}/disable")
    listed = olga.ok("GET", "projects/web/members")["items"]
    assert [m["user"] for m in listed if m["disabled"]] == ["vic"]
    env.admin.ok("POST", f"users/{vic}/enable")
    assert_error(olga.put("projects/web/members/max", json={"role": "admin"}), 422, field="role")
    assert_error(olga.put("projects/web/members/nobody", json={"role": "member"}), 404)
    assert olga.delete("projects/web/members/vic").status_code == 204
    assert_error(olga.delete("projects/web/members/vic"), 404)
    assert [m["user"] for m in olga.ok("GET", "projects/web/members")["items"]] == ["max", "olga"]


def test_role_changes_apply_to_the_next_request(env: Env) -> None:
    """Authenticated actors are cached; a write in this server makes the next request see it."""
    env.cluster()
    project = env.project("team")
    env.namespace("ns1", project["id"])
    _, token = env.user("alice")
    alice = env.api(token)
    assert alice.ok("GET", "me")["projects"] == {}
    env.admin.ok("PUT", f"projects/{project['id']}/members/alice", json={"role": "member"})
    assert alice.ok("GET", "me")["projects"] == {project["id"]: "member"}
    assert [p["name"] for p in alice.ok("GET", "projects")["items"]] == ["team"]
    assert env.admin.delete(f"projects/{project['id']}/members/alice").status_code == 204
    assert alice.ok("GET", "me")["projects"] == {}
    assert_error(alice.get(f"projects/{project['id']}"), 404)


def _second_process(env: Env, ttl: float) -> Server:
    """Another server on the same store, as a second `pullkeeper serve` would be."""
    return Server(Settings(data=env.data, database_url=env.database_url, auth_cache_seconds=ttl))


def test_revocation_reaches_other_servers_within_the_cache_time(env: Env) -> None:
    _, token = env.user("alice")
    created = env.api(token).ok("POST", "tokens", json={"name": "laptop"})
    eager, cached = _second_process(env, 0), _second_process(env, 60)
    # The cached server's clock moves only when the test moves it.
    now = [0.0]
    cached.tokens = auth.TokenCache(cached.settings.auth_cache_seconds, lambda: now[0])
    try:
        for other in (eager, cached):
            assert other.authenticate(created["token"], "10.0.0.9").username == "alice"
        assert env.api(token).delete(f"tokens/{created['id']}").status_code == 204
        # Without a cache, the other server refuses the token at once ...
        with pytest.raises(Unauthorized):
            eager.authenticate(created["token"], "10.0.0.9")
        # ... with one, it answers from its cache until the cache time has passed, not after.
        now[0] = 59.5
        assert cached.authenticate(created["token"], "10.0.0.9").username == "alice"
        now[0] = 60.0
        with pytest.raises(Unauthorized):
            cached.authenticate(created["token"], "10.0.0.9")
    finally:
        eager.close()
        cached.close()


def test_failed_logins_are_counted_by_every_server_on_the_store(env: Env) -> None:
    """Three failures through this server and two through another hold alice back on both:
    the throttle's count lives in the store (5 a minute by default)."""
    env.user("alice")
    other = _second_process(env, 0)
    try:
        bad, good = "pw-guess-Wq01", user_password("alice")

        def elsewhere(password: str) -> None:
            with other.transaction() as session:
                auth.login(session, other.throttle, "alice", password, "10.9.9.9", timedelta(1))

        here = env.client_from("10.9.9.9")
        for _ in range(3):
            assert_error(here.post("login", json={"username": "alice", "password": bad}), 401)
        for _ in range(2):
            with pytest.raises(Unauthorized, match="wrong user name or password"):
                elsewhere(bad)
        with pytest.raises(TooManyRequests):
            elsewhere(good)
        r = here.post("login", json={"username": "alice", "password": good})
        assert_error(r, 429, "too_many_requests")
        # Another source is not held back, and its success clears only its own count.
        assert (
            env.client_from("10.8.8.8")
            .post("login", json={"username": "alice", "password": good})
            .status_code
            == 201
        )
        assert_error(here.post("login", json={"username": "alice", "password": good}), 429)
    finally:
        other.close()


def test_a_refused_login_is_counted_but_writes_nothing_else(env: Env) -> None:
    env.user("alice")
    before = len(env.audit())
    r = env.anon.post("login", json={"username": "alice", "password": "pw-guess-Wq01"})
    assert_error(r, 401)
    with env.server.reading() as session:
        failures = session.scalars(select(LoginFailure)).all()
        assert [f.username for f in failures] == ["alice"]
    assert len(env.audit()) == before  # no token, no login event
