"""The audit trail: an event for every change, login and secret read; who may read which."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pullkeeper.store.models import utcnow
from tests.server.conftest import Env, assert_error, b64_auth, build_world, user_password

CHANGES_WITH_BEFORE_AND_AFTER = {
    "cluster.update",
    "project.update",
    "credential.update",
    "credential.activate",
    "credential.deactivate",
    "token.revoke",
}


def _by_action(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in reversed(events):  # oldest first
        out.setdefault(e["action"], []).append(e)
    return out


def test_every_change_is_audited(env: Env) -> None:
    start = utcnow() - timedelta(seconds=5)
    alice, _ = env.user("alice", login=False)
    login = env.client_from("10.9.9.9").ok(
        "POST", "login", json={"username": "alice", "password": user_password("alice")}
    )
    as_alice = env.api(login["token"])
    extra = as_alice.ok("POST", "tokens", json={"name": "ci"})
    assert as_alice.delete(f"tokens/{extra['id']}").status_code == 204

    cluster = env.cluster("c1")
    env.admin.ok("PATCH", "clusters/c1", json={"description": "changed"})
    doomed_cluster = env.cluster("c2")
    assert env.admin.delete("clusters/c2").status_code == 204
    web = env.project("web")
    env.admin.ok("PATCH", "projects/web", json={"description": "Web"})
    doomed_project = env.project("tmp")
    assert env.admin.delete("projects/tmp").status_code == 204
    shop = env.namespace("shop", None)
    env.namespace("shop", "web")
    env.namespace("gone", "web")
    assert env.admin.delete("clusters/c1/namespaces/gone").status_code == 204

    env.member("web", "alice", "member")
    env.member("web", "alice", "owner")
    env.admin.ok("PUT", "clusters/c1/policy", json={"always_pull": True})
    as_alice.ok("PUT", "projects/web/policy", json={"allowlist": ["docker.io"]})

    password = "pw-audited-cred-Vb71"
    cred = env.cred("site", api=as_alice, scope="namespace", namespace="shop", password=password)
    as_alice.ok("PATCH", f"credentials/{cred['id']}", json={"description": "d"})
    new_password = "pw-audited-cred-Vb72"
    as_alice.ok(
        "PATCH", f"credentials/{cred['id']}", json={"username": "bot", "password": new_password}
    )
    as_alice.ok("POST", f"credentials/{cred['id']}/deactivate")
    as_alice.ok("POST", f"credentials/{cred['id']}/activate")
    env.secret(cred["id"], as_alice)
    assert as_alice.delete(f"credentials/{cred['id']}").status_code == 204
    env.admin.ok("PUT", "projects/web/members/alice", json={"role": "viewer"})
    assert env.admin.delete("projects/web/members/alice").status_code == 204

    events = env.audit()
    assert env.admin.ok("GET", "audit", params={"limit": 1000})["total"] == len(events)
    for e in events:
        assert set(e) == {
            "id",
            "at",
            "actor",
            "source",
            "action",
            "object_type",
            "object_id",
            "project_id",
            "before",
            "after",
        }
        assert e["object_type"] and e["action"] and e["actor"]
        # The first start's own events come from the store template, made earlier.
        if e["actor"] != "system":
            assert datetime.fromisoformat(e["at"]) >= start
    ours = [e for e in events if e["actor"] != "system"]
    from_laptop = {e["action"] for e in ours if e["source"] == "10.9.9.9"}
    assert from_laptop == {"user.login", "token.create"}  # the login and the token it issued
    assert all(e["source"] in ("testclient", "10.9.9.9") for e in ours)
    text = str(events)
    for secret in (password, new_password, user_password("alice")):
        assert secret not in text
    assert b64_auth("robot", password) not in text and b64_auth("bot", new_password) not in text
    assert login["token"] not in text and extra["token"] not in text

    by = _by_action(ours)

    def one(action: str, **where: Any) -> dict[str, Any]:
        found = [e for e in by.get(action, []) if all(e[k] == v for k, v in where.items())]
        assert len(found) == 1, (action, where, by.get(action))
        return found[0]

    e = one("user.create", object_id=alice["id"])
    assert (e["actor"], e["object_type"], e["before"]) == ("admin", "user", None)
    assert e["after"]["username"] == "alice"
    e = one("user.login", object_id=alice["id"])
    assert (e["actor"], e["object_type"]) == ("alice", "user")
    e = one("token.create", object_id=login["id"])
    assert (e["actor"], e["object_type"], e["after"]["user"], e["after"]["name"]) == (
        "alice",
        "token",
        "alice",
        "login",
    )
    e = one("token.create", object_id=extra["id"])
    assert e["after"]["name"] == "ci"
    e = one("token.revoke", object_id=extra["id"])
    assert (e["actor"], e["object_type"]) == ("alice", "token")

    e = one("cluster.create", object_id=cluster["id"])
    assert (e["actor"], e["object_type"], e["before"], e["after"]["name"]) == (
        "admin",
        "cluster",
        None,
        "c1",
    )
    e = one("cluster.update", object_id=cluster["id"])
    assert (e["before"]["description"], e["after"]["description"]) == ("", "changed")
    e = one("cluster.delete", object_id=doomed_cluster["id"])
    assert (e["before"]["name"], e["after"]) == ("c2", None)

    e = one("project.create", object_id=web["id"])
    assert (e["project_id"], e["after"]["name"], e["after"]["cluster"]) == (web["id"], "web", "c1")
    e = one("project.update", object_id=web["id"])
    assert (e["before"]["description"], e["after"]["description"]) == ("", "Web")
    e = one("project.delete", object_id=doomed_project["id"])
    assert (e["before"]["name"], e["after"]) == ("tmp", None)

    puts = [e for e in by["namespace.put"] if e["object_id"] == shop["id"]]
    assert [(p["before"], p["after"]["project_id"]) for p in puts] == [
        (None, None),
        ({"project_id": None}, web["id"]),
    ]
    e = one("namespace.delete")
    assert (e["before"]["name"], e["project_id"]) == ("gone", web["id"])

    sets = by["member.set"]
    assert [(s["before"], s["after"]) for s in sets] == [
        (None, {"user": "alice", "role": "member"}),
        ({"role": "member"}, {"user": "alice", "role": "owner"}),
        ({"role": "owner"}, {"user": "alice", "role": "viewer"}),
    ]
    assert all(s["project_id"] == web["id"] and s["object_id"] == web["id"] for s in sets)
    e = one("member.remove")
    assert (e["before"], e["after"]) == ({"user": "alice", "role": "viewer"}, None)

    policies = by["policy.put"]
    assert [(p["actor"], p["project_id"]) for p in policies] == [
        ("admin", None),
        ("alice", web["id"]),
    ]
    assert policies[1]["after"]["allowlist"] == ["docker.io"]

    e = one("credential.create", object_id=cred["id"])
    assert (e["actor"], e["project_id"], e["before"]) == ("alice", web["id"], None)
    assert (e["after"]["name"], e["after"]["username"], e["after"]["server"]) == (
        "site",
        "robot",
        "registry.example.com",
    )
    updates = [e for e in by["credential.update"] if e["object_id"] == cred["id"]]
    assert len(updates) == 2
    assert (updates[0]["before"]["description"], updates[0]["after"]["description"]) == ("", "d")
    assert "secret" not in updates[0]["after"]
    assert (updates[1]["before"]["username"], updates[1]["after"]["username"]) == ("robot", "bot")
    assert updates[1]["after"]["secret"] == "changed"
    e = one("credential.deactivate", object_id=cred["id"])
    assert (e["before"], e["after"]) == ({"state": "active"}, {"state": "inactive"})
    e = one("credential.activate", object_id=cred["id"])
    assert (e["before"], e["after"]) == ({"state": "inactive"}, {"state": "active"})
    e = one("credential.read_secret", object_id=cred["id"])
    assert (e["actor"], e["project_id"]) == ("alice", web["id"])
    e = one("credential.delete", object_id=cred["id"])
    assert (e["actor"], e["before"]["name"], e["after"]) == ("alice", "site", None)

    # Every change says what it changed: an update or a state change, before and after;
    # a creation, after; a removal, before.
    silent = []
    for e in ours:
        action = e["action"]
        if action in CHANGES_WITH_BEFORE_AND_AFTER:
            ok = e["before"] is not None and e["after"] is not None and e["before"] != e["after"]
        elif action.endswith((".create", ".put", ".set")):
            ok = e["after"] is not None
        elif action.endswith((".delete", ".remove")):
            ok = e["before"] is not None
        else:
            ok = action in ("user.login", "credential.read_secret")
        if not ok:
            silent.append((action, e["before"], e["after"]))
    assert silent == []


def test_audit_filters_and_pages(env: Env) -> None:
    env.cluster("c1")
    for name in ("a", "b", "c"):
        env.cred(name, server=f"{name}.example.com")
    creates = env.admin.ok("GET", "audit", params={"action": "credential.create"})
    assert creates["total"] == 3 and [e["after"]["name"] for e in creates["items"]] == [
        "c",
        "b",
        "a",
    ]  # newest first
    cid = creates["items"][0]["object_id"]
    by_object = env.admin.ok("GET", "audit", params={"object_id": cid})["items"]
    assert [e["action"] for e in by_object] == ["credential.create"]
    clusters = env.admin.ok("GET", "audit", params={"object_type": "cluster"})["items"]
    assert [e["action"] for e in clusters] == ["cluster.create"]
    assert env.admin.ok("GET", "audit", params={"user": "nobody"})["total"] == 0
    everything = env.admin.ok("GET", "audit", params={"user": "admin"})
    page = env.admin.ok("GET", "audit", params={"user": "admin", "limit": 2, "offset": 1})
    assert (page["total"], page["limit"], page["offset"]) == (everything["total"], 2, 1)
    assert page["items"] == everything["items"][1:3]
    future = (utcnow() + timedelta(minutes=5)).isoformat()
    assert env.admin.ok("GET", "audit", params={"since": future})["total"] == 0
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    assert env.admin.ok("GET", "audit", params={"since": past})["total"] >= 4


def test_who_reads_which_events(env: Env) -> None:
    w = build_world(env, ("owner-a", "member-a", "owner-b"))
    alpha, beta = w.ids["alpha"], w.ids["beta"]
    owner_a, member_a = w.as_("owner-a"), w.as_("member-a")
    owner_a.ok("PATCH", f"credentials/{w.creds['alpha-proj']['id']}", json={"description": "x"})
    member_a.ok("POST", "tokens", json={"name": "mine"})
    w.as_("owner-b").ok("PUT", "projects/beta/policy", json={"always_pull": True})

    everything = env.audit()
    assert {e["project_id"] for e in everything} >= {alpha, beta, None}
    assert {e["actor"] for e in everything} >= {"admin", "owner-a", "member-a", "owner-b"}

    seen = owner_a.ok("GET", "audit", params={"limit": 1000})["items"]
    expected = [e for e in everything if e["project_id"] == alpha or e["actor"] == "owner-a"]
    assert seen == expected
    assert any(e["actor"] == "admin" for e in seen)  # the admin's changes in alpha
    assert all(e["project_id"] != beta for e in seen)

    seen = member_a.ok("GET", "audit", params={"limit": 1000})["items"]
    assert seen and all(e["actor"] == "member-a" for e in seen)
    assert [e["action"] for e in seen] == ["token.create"]
    seen = w.as_("owner-b").ok("GET", "audit", params={"limit": 1000})["items"]
    assert seen == [e for e in everything if e["project_id"] == beta or e["actor"] == "owner-b"]
    assert_error(env.anon.get("audit"), 401)
