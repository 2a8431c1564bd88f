"""Roles: what project owners, members and viewers, global viewers and admins may do and see.

The world (conftest.build_world): cluster c1 holds projects alpha and beta, cluster c2 holds
gamma. Users of alpha must not learn that anything of beta or gamma exists: every call aimed
at those answers 404, exactly as for something that does not exist.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Api, Env, World, assert_error, build_world

ROLES = ("owner-a", "member-a", "viewer-a")
USERS = ("owner-a", "member-a", "viewer-a", "gviewer", "owner-b")
Call = tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]


def _snapshot(env: Env) -> dict[str, Any]:
    """What the admin sees of everything, to prove refused calls changed nothing."""
    creds = env.admin.ok("GET", "credentials", params={"limit": 500})["items"]
    return {
        "credentials": creds,
        "projects": env.admin.ok("GET", "projects")["items"],
        "clusters": env.admin.ok("GET", "clusters")["items"],
        "namespaces": [
            env.admin.ok("GET", f"clusters/{c}/namespaces")["items"] for c in ("c1", "c2")
        ],
        "members": [
            env.admin.ok("GET", f"projects/{p}/members")["items"]
            for p in ("alpha", "beta", "gamma")
        ],
        "policies": [
            env.admin.ok("GET", f"projects/{p}/policy") for p in ("alpha", "beta", "gamma")
        ]
        + [env.admin.ok("GET", f"clusters/{c}/policy") for c in ("c1", "c2")],
    }


def _foreign_calls(w: World) -> list[Call]:
    ids = w.ids
    calls: list[Call] = []
    for name in ("beta-proj", "beta-ns", "gamma-proj"):
        cid = w.creds[name]["id"]
        calls += [
            ("GET", f"credentials/{cid}", None, None),
            ("PATCH", f"credentials/{cid}", {"description": "mine now"}, None),
            ("PATCH", f"credentials/{cid}", {"password": "pw-overwrite-Jk72"}, None),
            ("POST", f"credentials/{cid}/activate", None, None),
            ("POST", f"credentials/{cid}/deactivate", None, None),
            ("DELETE", f"credentials/{cid}", None, None),
            ("GET", f"credentials/{cid}/dockerconfigjson", None, None),
        ]
    for project, cluster in (("beta", "c1"), ("gamma", "c2")):
        for ref in (project, ids[project]):
            calls += [
                ("GET", f"projects/{ref}", None, None),
                ("PATCH", f"projects/{ref}", {"description": "x"}, None),
                ("DELETE", f"projects/{ref}", None, None),
                ("GET", f"projects/{ref}/policy", None, None),
                ("GET", f"projects/{ref}/policy", None, {"effective": "true"}),
                ("PUT", f"projects/{ref}/policy", {"always_pull": True}, None),
                ("GET", f"projects/{ref}/members", None, None),
                ("PUT", f"projects/{ref}/members/owner-a", {"role": "owner"}, None),
                ("DELETE", f"projects/{ref}/members/owner-b", None, None),
                ("GET", "credentials", None, {"project": ref}),
                ("GET", f"clusters/{cluster}/namespaces", None, {"project": ref}),
            ]
        base = {
            "name": "sneaky",
            "cluster": cluster,
            "server": "sneaky.example.com",
            "username": "u",
            "password": "pw-sneaky-Jk72",
        }
        calls += [
            ("POST", "credentials", {**base, "scope": "project", "project": project}, None),
        ]
    ns_base = {
        "name": "sneaky",
        "scope": "namespace",
        "server": "sneaky.example.com",
        "username": "u",
        "password": "pw-sneaky-Jk72",
    }
    calls += [
        ("DELETE", "clusters/c1/namespaces/b-web", None, None),
        ("GET", "namespaces/b-web/effective-credentials", None, {"cluster": "c1"}),
        ("GET", "namespaces/b-web/effective-credentials", None, {"cluster": ids["c1"]}),
        ("POST", "credentials", {**ns_base, "cluster": "c2", "namespace": "g-web"}, None),
        # The other cluster is invisible as a whole.
        ("GET", "clusters/c2", None, None),
        ("GET", f"clusters/{ids['c2']}", None, None),
        ("PATCH", "clusters/c2", {"description": "x"}, None),
        ("DELETE", "clusters/c2", None, None),
        ("GET", "clusters/c2/policy", None, None),
        ("PUT", "clusters/c2/policy", {"always_pull": True}, None),
        ("GET", "clusters/c2/namespaces", None, None),
        ("PUT", "clusters/c2/namespaces/g-web", {"project": None}, None),
        ("DELETE", "clusters/c2/namespaces/g-web", None, None),
        ("GET", "namespaces/g-web/effective-credentials", None, {"cluster": "c2"}),
        ("GET", "projects", None, {"cluster": "c2"}),
        ("GET", "credentials", None, {"cluster": "c2"}),
        ("POST", "projects", {"name": "sneaky", "cluster": "c2"}, None),
    ]
    return calls


def test_other_projects_answer_404(env: Env, subtests: pytest.Subtests) -> None:
    w = build_world(env, (*ROLES, "owner-b"))
    before = _snapshot(env)
    for who in ROLES:
        api = w.as_(who)
        for method, path, body, params in _foreign_calls(w):
            with subtests.test(who=who, call=f"{method} {path} {params or ''} {body or ''}"):
                r = api.call(method, path, json=body, params=params)
                assert_error(r, 404, "not_found")
    assert _snapshot(env) == before
    assert env.audit(action="credential.read_secret") == []


def _same_answer(a: Any, b: Any, a_name: str, b_name: str) -> None:
    """Two responses that differ only by the name they were asked about."""
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.text.replace(a_name, "NAME") == b.text.replace(b_name, "NAME")


@pytest.mark.parametrize("who", ROLES)
def test_other_projects_namespaces_look_missing(env: Env, who: str) -> None:
    """Where a call names a namespace, another project's answers as one that does not exist."""
    w = build_world(env, (who,))
    api = w.as_(who)
    # Registering namespaces is for admins: the same 403 whoever's the namespace is.
    foreign = api.put("clusters/c1/namespaces/b-web", json={"project": None})
    missing = api.put("clusters/c1/namespaces/no-such-ns", json={"project": None})
    _same_answer(foreign, missing, "b-web", "no-such-ns")
    assert_error(foreign, 403)
    assert_error(api.put("clusters/c1/namespaces/a-web", json={"project": None}), 403)

    body = {
        "name": "sneaky",
        "cluster": "c1",
        "scope": "namespace",
        "server": "sneaky.example.com",
        "username": "u",
        "password": "pw-sneaky-Jk72",
    }
    foreign = api.post("credentials", json={**body, "namespace": "b-web"})
    missing = api.post("credentials", json={**body, "namespace": "no-such-ns"})
    _same_answer(foreign, missing, "b-web", "no-such-ns")
    assert foreign.status_code in (404, 422)
    assert assert_error(foreign, foreign.status_code)["field"] in (None, "namespace")

    for path in ("namespaces/b-web/effective-credentials", "namespaces/free/effective-credentials"):
        foreign = api.get(path, params={"cluster": "c1"})
        missing = api.get("namespaces/no-such-ns/effective-credentials", params={"cluster": "c1"})
        _same_answer(foreign, missing, path.split("/")[1], "no-such-ns")
        assert_error(foreign, 404)

    ns = {n["name"]: n["project"] for n in env.admin.ok("GET", "clusters/c1/namespaces")["items"]}
    assert (ns["b-web"], ns["a-web"]) == ("beta", "alpha")
    assert "no-such-ns" not in ns
    assert "sneaky" not in [c["name"] for c in env.admin.ok("GET", "credentials")["items"]]


@pytest.mark.parametrize("who", ["member-a"])
def test_what_effective_credentials_show_exists_for_the_user(env: Env, who: str) -> None:
    """A credential listed as applying in the user's namespace is one the user can see.

    "Whatever a user may not see does not exist for them": the effective list of a namespace
    and GET /credentials/{id} (and the namespace filter of the list) must agree.
    """
    w = build_world(env, (who,))
    api = w.as_(who)
    effective = api.ok("GET", "namespaces/a-web/effective-credentials", params={"cluster": "c1"})
    listed = api.ok("GET", "credentials", params={"cluster": "c1", "namespace": "a-web"})
    assert sorted(c["name"] for c in listed["items"]) == sorted(
        c["name"] for c in effective["items"]
    )
    for item in effective["items"]:
        r = api.get(f"credentials/{item['id']}")
        assert r.status_code == 200, (item["name"], r.text)


def _names(api: Api, path: str, **params: Any) -> list[str]:
    return [x["name"] for x in api.ok("GET", path, params=params)["items"]]


def test_lists_show_only_the_users_projects(env: Env, subtests: pytest.Subtests) -> None:
    w = build_world(env, (*ROLES, "owner-b"))
    for who in ROLES:
        with subtests.test(who=who):
            _lists_of(w, who)


def _lists_of(w: World, who: str) -> None:
    api = w.as_(who)
    role = who.split("-", maxsplit=1)[0]
    assert api.ok("GET", "me")["projects"] == {w.ids["alpha"]: role}
    assert _names(api, "clusters") == ["c1"]
    assert _names(api, "projects") == ["alpha"]
    assert _names(api, "projects", cluster="c1") == ["alpha"]
    assert _names(api, "clusters/c1/namespaces") == ["a-api", "a-web"]
    # Cluster-wide credentials of the user's cluster reach their namespaces: visible.
    assert _names(api, "credentials") == ["alpha-ns", "alpha-proj", "c1-wide"]
    assert api.ok("GET", "credentials")["total"] == 3
    assert _names(api, "credentials", cluster="c1") == ["alpha-ns", "alpha-proj", "c1-wide"]
    assert _names(api, "credentials", q="beta") == []
    assert _names(api, "credentials", provider="custom") == ["alpha-proj", "c1-wide"]
    # Filtering by another project's namespace looks like filtering by no namespace at all.
    foreign = api.ok("GET", "credentials", params={"cluster": "c1", "namespace": "b-web"})
    missing = api.ok("GET", "credentials", params={"cluster": "c1", "namespace": "nothing"})
    assert foreign == missing
    eff = api.ok("GET", "namespaces/a-web/effective-credentials", params={"cluster": "c1"})
    names = {c["name"] for c in eff["items"]}
    assert names == {"alpha-ns", "alpha-proj", "c1-wide"}

    foreign_ids = {w.ids["beta"], w.ids["gamma"]} | {
        w.creds[n]["id"] for n in ("beta-proj", "beta-ns", "gamma-proj")
    }
    for event in api.ok("GET", "audit", params={"limit": 1000})["items"]:
        assert event["project_id"] not in foreign_ids and event["object_id"] not in foreign_ids
        assert "beta" not in str(event) and "gamma" not in str(event), event


def test_readers_read_metadata_and_nothing_else(env: Env, subtests: pytest.Subtests) -> None:
    w = build_world(env, ("member-a", "viewer-a", "gviewer"))
    before = _snapshot(env)
    for who in ("member-a", "viewer-a", "gviewer"):
        _reader(env, w, who, subtests)
    assert _snapshot(env) == before
    assert env.audit(action="credential.read_secret") == []


def _reader(env: Env, w: World, who: str, subtests: pytest.Subtests) -> None:
    api = w.as_(who)
    readable = ["alpha-proj", "alpha-ns", "c1-wide"]
    if who == "gviewer":
        readable = list(w.creds)
        assert _names(api, "clusters") == ["c1", "c2"]
        assert _names(api, "projects") == ["alpha", "beta", "gamma"]
        assert api.ok("GET", "credentials")["total"] == len(w.creds)
        assert _names(api, "clusters/c1/namespaces") == ["a-api", "a-web", "b-web", "free"]
        api.ok("GET", "namespaces/b-web/effective-credentials", params={"cluster": "c1"})
        api.ok("GET", "projects/beta/policy", params={"effective": True})
    for name in readable:
        cid = w.creds[name]["id"]
        with subtests.test(who=who, read=name):
            assert api.ok("GET", f"credentials/{cid}") == env.admin.ok("GET", f"credentials/{cid}")
            assert_error(api.get(f"credentials/{cid}/dockerconfigjson"), 403)
    for path, params in (
        ("projects/alpha", None),
        ("projects/alpha/policy", None),
        ("projects/alpha/policy", {"effective": True}),
        ("projects/alpha/members", None),
        ("clusters/c1", None),
        ("clusters/c1/policy", None),
        ("clusters/c1/namespaces", {"project": "alpha"}),
        ("namespaces/a-web/effective-credentials", {"cluster": "c1"}),
    ):
        with subtests.test(who=who, read=path):
            assert api.ok("GET", path, params=params) == env.admin.ok("GET", path, params=params)

    cid = w.creds["alpha-proj"]["id"]
    new_cred = {
        "name": "mine",
        "cluster": "c1",
        "server": "mine.example.com",
        "username": "u",
        "password": "pw-mine-Jk72aa",
    }
    refused: list[Call] = [
        ("PATCH", f"credentials/{cid}", {"description": "x"}, None),
        ("PATCH", f"credentials/{cid}", {"username": "x", "password": "pw-mine-Jk72aa"}, None),
        ("POST", f"credentials/{cid}/deactivate", None, None),
        ("POST", f"credentials/{cid}/activate", None, None),
        ("DELETE", f"credentials/{cid}", None, None),
        ("POST", "credentials", {**new_cred, "scope": "project", "project": "alpha"}, None),
        ("POST", "credentials", {**new_cred, "scope": "namespace", "namespace": "a-web"}, None),
        ("POST", "credentials", {**new_cred, "scope": "cluster"}, None),
        ("PUT", "projects/alpha/policy", {"always_pull": True}, None),
        ("PUT", "projects/alpha/members/" + who, {"role": "owner"}, None),
        ("DELETE", "projects/alpha/members/" + who, None, None),
        ("PATCH", "projects/alpha", {"description": "x"}, None),
        ("DELETE", "projects/alpha", None, None),
        ("POST", "projects", {"name": "new", "cluster": "c1"}, None),
        ("POST", "clusters", {"name": "c9"}, None),
        ("PATCH", "clusters/c1", {"description": "x"}, None),
        ("DELETE", "clusters/c1", None, None),
        ("PUT", "clusters/c1/policy", {"always_pull": True}, None),
        ("PUT", "clusters/c1/namespaces/a-new", {"project": "alpha"}, None),
        ("DELETE", "clusters/c1/namespaces/a-web", None, None),
        ("POST", "users", {"username": "new", "password": "pw-new-user-1"}, None),
    ]
    if who == "gviewer":
        bid = w.creds["beta-proj"]["id"]
        refused += [
            ("PATCH", f"credentials/{bid}", {"description": "x"}, None),
            ("DELETE", f"credentials/{bid}", None, None),
            ("PUT", "projects/beta/policy", {"always_pull": True}, None),
            ("PUT", "projects/beta/members/gviewer", {"role": "owner"}, None),
        ]
    for method, path, body, params in refused:
        with subtests.test(who=who, call=f"{method} {path} {body or ''}"):
            assert_error(api.call(method, path, json=body, params=params), 403, "forbidden")


def test_owner_manages_their_project_only(env: Env, subtests: pytest.Subtests) -> None:
    w = build_world(env, ("owner-a", "member-a"))
    owner = w.as_("owner-a")
    made = env.cred("by-owner", api=owner, scope="project", project="alpha")
    assert (made["created_by"], made["project"]) == ("owner-a", "alpha")
    in_ns = env.cred(
        "by-owner-ns", api=owner, scope="namespace", namespace="a-api", server="x.example.com"
    )
    assert in_ns["namespace"] == "a-api"
    path = f"credentials/{made['id']}"
    assert owner.ok("PATCH", path, json={"description": "mine"})["updated_by"] == "owner-a"
    assert owner.ok("POST", f"{path}/deactivate")["state"] == "inactive"
    assert owner.ok("POST", f"{path}/activate")["state"] == "active"
    assert env.secret(made["id"], owner) == {
        "registry.example.com": ("robot", "pw-by-owner-Zq81xv", "")
    }
    assert env.secret(w.creds["alpha-ns"]["id"], owner)["quay.io"][1] == "pw-alpha-ns-Zq81xv"
    assert owner.delete(path).status_code == 204
    assert owner.ok("PUT", "projects/alpha/policy", json={"always_pull": True})["always_pull"]
    assert owner.ok("PATCH", "projects/alpha", json={"description": "ours"})["description"] == (
        "ours"
    )
    owner.ok("PUT", "projects/alpha/members/member-a", json={"role": "viewer"})
    assert w.as_("member-a").ok("GET", "me")["projects"] == {w.ids["alpha"]: "viewer"}

    before = _snapshot(env)
    refused: list[tuple[Call, int]] = [
        (("POST", "clusters", {"name": "c9"}, None), 403),
        (("POST", "projects", {"name": "delta", "cluster": "c1"}, None), 403),
        (("POST", "projects", {"name": "delta", "cluster": "c2"}, None), 404),
        (("PATCH", "projects/alpha", {"name": "alpha-2"}, None), 403),
        (("DELETE", "projects/alpha", None, None), 403),
        (("PATCH", "clusters/c1", {"description": "x"}, None), 403),
        (("DELETE", "clusters/c1", None, None), 403),
        (("PUT", "clusters/c1/policy", {"always_pull": False}, None), 403),
        (("PUT", "clusters/c1/namespaces/a-new", {"project": "alpha"}, None), 403),
        (("DELETE", "clusters/c1/namespaces/a-web", None, None), 403),
        (
            (
                "POST",
                "credentials",
                {
                    "name": "wide-2",
                    "cluster": "c1",
                    "scope": "cluster",
                    "server": "w.example.com",
                    "username": "u",
                    "password": "pw-wide-2-Jk72",
                },
                None,
            ),
            403,
        ),
        (("GET", f"credentials/{w.creds['c1-wide']['id']}/dockerconfigjson", None, None), 403),
        (("DELETE", f"credentials/{w.creds['free-ns']['id']}", None, None), 404),
        (("GET", "users", None, None), 403),
    ]
    for (method, path, body, params), status in refused:
        with subtests.test(call=f"{method} {path} {body or ''}"):
            assert_error(owner.call(method, path, json=body, params=params), status)
    assert _snapshot(env) == before


def test_secret_reads_by_role(env: Env) -> None:
    w = build_world(env, USERS)
    cid = w.creds["alpha-proj"]["id"]
    path = f"credentials/{cid}/dockerconfigjson"
    want = {"registry.example.com": ("robot", "pw-alpha-proj-Zq81xv", "")}
    assert env.secret(cid) == want
    assert env.secret(cid, w.as_("owner-a")) == want
    for who in ("member-a", "viewer-a", "gviewer"):
        assert_error(w.as_(who).get(path), 403, "forbidden")
    assert_error(w.as_("owner-b").get(path), 404, "not_found")
    # The admin alone reads what no project owns.
    for name in ("c1-wide", "free-ns"):
        assert env.secret(w.creds[name]["id"])
        for who in USERS:
            r = w.as_(who).get(f"credentials/{w.creds[name]['id']}/dockerconfigjson")
            assert r.status_code in (403, 404), (who, name, r.status_code)
    reads = [(e["actor"], e["object_id"]) for e in env.audit(action="credential.read_secret")]
    assert sorted(reads) == sorted(
        [
            ("admin", cid),
            ("owner-a", cid),
            ("admin", w.creds["c1-wide"]["id"]),
            ("admin", w.creds["free-ns"]["id"]),
        ]
    )
