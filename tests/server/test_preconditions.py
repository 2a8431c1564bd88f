"""No lost updates: ETags on reads and writes, If-Match on every write, through the real app.

The attack replayed: two people read the same object, both change it, and the second write
silently overwrites the first. With If-Match the second gets 412 and nothing of it is saved;
without If-Match a write goes through as it always has. Run on SQLite and PostgreSQL, where
the compare-and-write must hold when the writes arrive at the same moment too.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text

from pullkeeper.store import db
from tests.server.conftest import Api, Env, assert_error

STRONG = re.compile(r'"[\x21\x23-\x7e]+"')


@dataclass(frozen=True)
class Kind:
    """One kind of object people edit: how to make one, its URL, and an edit of it."""

    name: str
    make: Callable[[Env], str]  # -> the object's path
    method: str  # how it is changed
    edit: Callable[[int], dict[str, Any]]  # the n-th person's change
    field: str  # what the change shows in


def _cluster(env: Env) -> str:
    env.cluster("c1")
    return "clusters/c1"


def _project(env: Env) -> str:
    env.cluster("c1")
    return "projects/" + env.project("web")["id"]


def _credential(env: Env) -> str:
    env.cluster("c1")
    return "credentials/" + env.cred("quay-ro")["id"]


def _cluster_policy(env: Env) -> str:
    env.cluster("c1")
    return "clusters/c1/policy"


def _project_policy(env: Env) -> str:
    env.cluster("c1")
    return "projects/" + env.project("web")["id"] + "/policy"


KINDS = [
    Kind("cluster", _cluster, "PATCH", lambda n: {"description": f"edit {n}"}, "description"),
    Kind("project", _project, "PATCH", lambda n: {"description": f"edit {n}"}, "description"),
    Kind("credential", _credential, "PATCH", lambda n: {"description": f"edit {n}"}, "description"),
    Kind(
        "cluster-policy",
        _cluster_policy,
        "PUT",
        lambda n: {"allowlist": [f"r{n}.example.com"]},
        "allowlist",
    ),
    Kind(
        "project-policy",
        _project_policy,
        "PUT",
        lambda n: {"allowlist": [f"r{n}.example.com"]},
        "allowlist",
    ),
]
BY_NAME = {k.name: k for k in KINDS}


def _tag(response: httpx.Response) -> str:
    assert response.status_code in (200, 201), response.text
    tag = response.headers.get("etag")
    assert tag is not None, f"{response.request.url} answered without an ETag"
    assert STRONG.fullmatch(tag), f"not a strong entity tag: {tag!r}"
    return tag


def _two_admins(env: Env) -> tuple[Api, Api]:
    _, token = env.user("ops", admin=True)
    return env.admin, env.api(token)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_the_second_of_two_edits_of_one_read_is_refused(env: Env, kind: Kind) -> None:
    path = kind.make(env)
    alice, bob = _two_admins(env)
    # Both read the same version.
    seen_by_alice = _tag(alice.get(path))
    seen_by_bob = _tag(bob.get(path))
    assert seen_by_alice == seen_by_bob

    first = alice.call(kind.method, path, json=kind.edit(1), headers={"If-Match": seen_by_alice})
    new_tag = _tag(first)
    assert new_tag != seen_by_alice
    assert first.json()[kind.field] == kind.edit(1)[kind.field]

    second = bob.call(kind.method, path, json=kind.edit(2), headers={"If-Match": seen_by_bob})
    err = assert_error(second, 412, "precondition_failed")
    assert "changed by someone else since you read it" in err["message"], err
    assert "read it again" in err["message"] and "retry" in err["message"], err
    assert "etag" not in second.headers

    # The first change is kept, and the tag the first writer got is the current one.
    now = bob.get(path)
    assert now.json()[kind.field] == kind.edit(1)[kind.field]
    assert _tag(now) == new_tag

    # Read again, redo, retry: it goes through.
    retried = bob.call(kind.method, path, json=kind.edit(2), headers={"If-Match": _tag(now)})
    assert retried.json()[kind.field] == kind.edit(2)[kind.field]
    assert _tag(retried) not in (seen_by_alice, new_tag)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_edits_that_arrive_at_once_with_one_tag_let_exactly_one_through(
    env: Env, kind: Kind
) -> None:
    path = kind.make(env)
    tag = _tag(env.admin.get(path))
    n = 6
    barrier = threading.Barrier(n)
    out: list[httpx.Response | None] = [None] * n
    errors: list[BaseException] = []

    def edit(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            out[i] = env.admin.call(kind.method, path, json=kind.edit(i), headers={"If-Match": tag})
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    responses = [r for r in out if r is not None]
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 412: n - 1}, [r.text for r in responses]
    [winner] = [i for i, r in enumerate(out) if r is not None and r.status_code == 200]
    assert env.admin.ok("GET", path)[kind.field] == kind.edit(winner)[kind.field]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_writes_without_if_match_still_go_through(env: Env, kind: Kind) -> None:
    path = kind.make(env)
    before = _tag(env.admin.get(path))
    for n in (1, 2):
        written = env.admin.call(kind.method, path, json=kind.edit(n))
        assert written.json()[kind.field] == kind.edit(n)[kind.field]
    after = _tag(env.admin.get(path))
    assert after != before


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_if_match_forms(env: Env, kind: Kind) -> None:
    path = kind.make(env)
    tag = _tag(env.admin.get(path))
    # A read changes nothing.
    assert _tag(env.admin.get(path)) == tag
    # "*": whatever version there is.
    tag = _tag(env.admin.call(kind.method, path, json=kind.edit(1), headers={"If-Match": "*"}))
    # A list matches when one of its tags is current; weak tags never match (RFC 9110 13.1.1).
    listed = f'"nope.1", {tag}'
    tag = _tag(env.admin.call(kind.method, path, json=kind.edit(2), headers={"If-Match": listed}))
    weak = env.admin.call(kind.method, path, json=kind.edit(3), headers={"If-Match": f"W/{tag}"})
    assert_error(weak, 412, "precondition_failed")
    # A tag without its quotes is not an entity tag: said so, and nothing is saved.
    for bad in (tag.strip('"'), '"unterminated', "", f"{tag} {tag}"):
        refused = env.admin.call(kind.method, path, json=kind.edit(4), headers={"If-Match": bad})
        err = assert_error(refused, 400, "bad_request", field="If-Match")
        assert "If-Match" in err["message"], err
    assert env.admin.ok("GET", path)[kind.field] == kind.edit(2)[kind.field]
    assert _tag(env.admin.get(path)) == tag


def test_a_write_answers_with_the_tag_a_read_then_returns(env: Env) -> None:
    env.cluster("c1")
    created = env.admin.post(
        "credentials",
        json={
            "name": "hub",
            "cluster": "c1",
            "scope": "cluster",
            "provider": "custom",
            "server": "registry.example.com",
            "username": "u",
            "password": "pw-hub-Tq71zz",
        },
    )
    path = "credentials/" + created.json()["id"]
    assert _tag(created) == _tag(env.admin.get(path))
    for method, sub, body in (
        ("PATCH", "", {"description": "x"}),
        ("POST", "/deactivate", None),
        ("POST", "/activate", None),
    ):
        written = env.admin.call(method, path + sub, json=body)
        assert _tag(written) == _tag(env.admin.get(path)), (method, sub)
    made = env.admin.post("clusters", json={"name": "c2"})
    assert _tag(made) == _tag(env.admin.get("clusters/c2"))
    made = env.admin.post("projects", json={"name": "p", "cluster": "c2"})
    assert _tag(made) == _tag(env.admin.get("projects/" + made.json()["id"]))


def test_a_stale_deactivate_is_refused(env: Env) -> None:
    path = _credential(env)
    stale = _tag(env.admin.get(path))
    env.admin.ok("PATCH", path, json={"description": "someone else's"})
    refused = env.admin.post(path + "/deactivate", headers={"If-Match": stale})
    assert_error(refused, 412, "precondition_failed")
    assert env.admin.ok("GET", path)["state"] == "active"


@pytest.mark.parametrize("kind", ["cluster", "project", "credential"])
def test_a_stale_delete_is_refused(env: Env, kind: str) -> None:
    path = BY_NAME[kind].make(env)
    stale = _tag(env.admin.get(path))
    current = _tag(env.admin.call("PATCH", path, json={"description": "changed meanwhile"}))
    refused = env.admin.delete(path, headers={"If-Match": stale})
    assert_error(refused, 412, "precondition_failed")
    assert env.admin.ok("GET", path)["description"] == "changed meanwhile"
    assert env.admin.delete(path, headers={"If-Match": current}).status_code == 204
    assert env.admin.get(path).status_code == 404


def test_a_recreated_cluster_does_not_match_the_old_ones_tag(env: Env) -> None:
    env.cluster("prod")
    old = _tag(env.admin.get("clusters/prod"))
    assert env.admin.delete("clusters/prod").status_code == 204
    env.cluster("prod")
    refused = env.admin.patch(
        "clusters/prod", json={"description": "meant for the old one"}, headers={"If-Match": old}
    )
    assert_error(refused, 412, "precondition_failed")


def test_a_policy_never_set_has_a_version_too(env: Env) -> None:
    """Two people set a policy nobody set yet: the second is refused, not merged in."""
    path = _project_policy(env)
    alice, bob = _two_admins(env)
    unset = _tag(alice.get(path))
    assert _tag(bob.get(path)) == unset
    alice.ok("PUT", path, json={"mode": "warn"}, headers={"If-Match": unset})
    refused = bob.put(path, json={"always_pull": True}, headers={"If-Match": unset})
    assert_error(refused, 412, "precondition_failed")
    got = alice.ok("GET", path)
    assert (got["mode"], got["always_pull"]) == ("warn", None)
    # The effective view is not a thing one writes: no ETag.
    assert "etag" not in alice.get(path, params={"effective": "true"}).headers


def test_a_check_result_is_not_an_edit(env: Env) -> None:
    """A credential's last check is recorded beside it, not by an edit of it: a tag read
    before a check still lets its reader's edit through."""
    env.cluster("c1")
    with socket.socket() as s:  # a port nothing listens on: the login fails at once
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = "credentials/" + env.cred("local", server=f"127.0.0.1:{closed}")["id"]
    tag = _tag(env.admin.get(path))
    env.admin.ok("POST", path + "/verify")
    assert env.admin.ok("GET", path)["last_check"]["status"] == "failing"
    edited = env.admin.patch(path, json={"description": "x"}, headers={"If-Match": tag})
    assert edited.status_code == 200, edited.text


def test_the_openapi_document_shows_etag_and_if_match(env: Env) -> None:
    doc = env.anon.ok("GET", "/api/v1/openapi.json")
    for path, method in (
        ("/api/v1/credentials/{credential_id}", "patch"),
        ("/api/v1/credentials/{credential_id}", "delete"),
        ("/api/v1/clusters/{cluster}", "patch"),
        ("/api/v1/projects/{project}", "delete"),
        ("/api/v1/clusters/{cluster}/policy", "put"),
        ("/api/v1/projects/{project}/policy", "put"),
    ):
        op = doc["paths"][path][method]
        headers = [p for p in op["parameters"] if p["in"] == "header"]
        assert [h["name"] for h in headers] == ["If-Match"], (path, method)
        assert "412" in op["responses"], (path, method)
    for path in (
        "/api/v1/credentials/{credential_id}",
        "/api/v1/clusters/{cluster}",
        "/api/v1/projects/{project}",
        "/api/v1/clusters/{cluster}/policy",
    ):
        assert "ETag" in doc["paths"][path]["get"]["responses"]["200"]["headers"], path


def test_the_migration_keeps_every_row_and_starts_it_at_version_1(env: Env) -> None:
    env.cluster("c1")
    project = env.project("web")
    env.namespace("ns1", project["id"])
    cred = env.cred("quay-ro", scope="namespace", namespace="ns1")
    env.admin.ok("PUT", "clusters/c1/policy", json={"mode": "warn"})
    env.admin.ok("PATCH", "clusters/c1", json={"description": "edited, so at version 2"})
    before = env.admin.ok("GET", "credentials")["items"]
    engine = env.server.db.engine
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM clusters")).keys()
        assert "version" not in columns
    engine.dispose()  # pooled SQLite connections keep the old table layout
    db.upgrade(engine)

    # Nothing went with the column (a table copy on SQLite would cascade to every row below).
    assert env.admin.ok("GET", "credentials")["items"] == before
    assert env.admin.ok("GET", "clusters/c1/policy")["mode"] == "warn"
    for path, key in (
        ("clusters/c1", env.admin.ok("GET", "clusters/c1")["id"]),
        ("projects/" + project["id"], project["id"]),
        ("credentials/" + cred["id"], cred["id"]),
        ("clusters/c1/policy", env.admin.ok("GET", "clusters/c1")["id"]),
    ):
        assert env.admin.get(path).headers["etag"] == f'"{key}.1"', path
    edited = env.admin.patch(
        "credentials/" + cred["id"],
        json={"description": "x"},
        headers={"If-Match": f'"{cred["id"]}.1"'},
    )
    assert edited.headers["etag"] == f'"{cred["id"]}.2"'
