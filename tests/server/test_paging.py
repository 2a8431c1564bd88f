"""Keyset paging of the credential and audit listings, the superseded filter, and the listing's
statement count (SQLite and PostgreSQL, as every server test)."""

from __future__ import annotations

import base64
import itertools
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from pullkeeper.services import credentials as svc
from pullkeeper.store.models import Credential
from tests.server.conftest import Env, assert_error


def _walk(env: Env, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, page after page by the `next` cursor."""
    page = env.admin.ok("GET", path, params={"limit": limit, **params})
    items = list(page["items"])
    while page["next"]:
        assert len(page["items"]) == limit
        page = env.admin.ok("GET", path, params={"limit": limit, "cursor": page["next"], **params})
        items.extend(page["items"])
    return items


def _fleet(env: Env) -> None:
    """Same-named credentials in two clusters (ties on the name) and a few more."""
    for cluster in ("c1", "c2"):
        env.cluster(cluster)
        for i in range(4):
            env.cred(f"dup-{i}", cluster=cluster, server=f"r{i}.example.com")
    for i in range(5):
        env.cred(f"solo-{i}", server=f"s{i}.example.com")


def test_cursor_walks_every_row_once_in_order(env: Env) -> None:
    _fleet(env)
    everything = env.admin.ok("GET", "credentials", params={"limit": 500})["items"]
    order = [(c["name"], c["id"]) for c in everything]
    assert order == sorted(order)  # by name, ties broken by id
    assert len(everything) == 13
    for limit in (1, 2, 3, 4, 13, 50):
        walked = _walk(env, "credentials", limit)
        assert [c["id"] for c in walked] == [c["id"] for c in everything], limit
    last = env.admin.ok("GET", "credentials", params={"limit": 13})
    assert last["next"] is None
    # Filters hold on every page.
    walked = _walk(env, "credentials", 2, cluster="c2")
    assert [c["name"] for c in walked] == [f"dup-{i}" for i in range(4)]


def test_cursor_pages_back_with_prev(env: Env) -> None:
    _fleet(env)
    pages = [env.admin.ok("GET", "credentials", params={"limit": 4})]
    assert pages[0]["prev"] is None
    while pages[-1]["next"]:
        pages.append(
            env.admin.ok("GET", "credentials", params={"limit": 4, "cursor": pages[-1]["next"]})
        )
    for before, page in itertools.pairwise(pages):
        back = env.admin.ok("GET", "credentials", params={"limit": 4, "cursor": page["prev"]})
        assert [c["id"] for c in back["items"]] == [c["id"] for c in before["items"]]
    first_again = env.admin.ok(
        "GET", "credentials", params={"limit": 4, "cursor": pages[1]["prev"]}
    )
    assert first_again["prev"] is None


def test_rows_added_and_removed_between_pages(env: Env) -> None:
    _fleet(env)
    first = env.admin.ok("GET", "credentials", params={"limit": 5})
    seen = [c["name"] for c in first["items"]]
    assert seen == ["dup-0", "dup-0", "dup-1", "dup-1", "dup-2"]
    # Added before the cursor (not shown again), after it (shown), and one removed ahead.
    env.cred("aaa-new", server="n1.example.com")
    env.cred("sz-new", server="n2.example.com")
    gone = next(
        c
        for c in env.admin.ok("GET", "credentials", params={"q": "solo-3"})["items"]
        if c["name"] == "solo-3"
    )
    env.admin.ok("DELETE", f"credentials/{gone['id']}", status=204)
    rest = _walk_from(env, first["next"], 5)
    assert seen + [c["name"] for c in rest] == [
        *("dup-0", "dup-0", "dup-1", "dup-1", "dup-2", "dup-2", "dup-3", "dup-3"),
        *("solo-0", "solo-1", "solo-2", "solo-4", "sz-new"),
    ]


def _walk_from(env: Env, cursor: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_: str | None = cursor
    while next_:
        page = env.admin.ok("GET", "credentials", params={"limit": limit, "cursor": next_})
        items.extend(page["items"])
        next_ = page["next"]
    return items


def _b64(doc: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_a_bad_cursor_is_422_saying_what_to_do(env: Env) -> None:
    _fleet(env)
    bad = ["!!!", "e30", _b64([1]), _b64({"a": ["x"]}), _b64({"a": [1, 2]}), _b64({"x": [1]})]
    for cursor in bad:
        for path in ("credentials", "audit"):
            body = assert_error(env.admin.get(path, params={"cursor": cursor}), 422, field="cursor")
            message = body["message"]
            assert "unchanged" in message and "leave cursor out" in message, message
    good = env.admin.ok("GET", "credentials", params={"limit": 2})["next"]
    assert_error(
        env.admin.get("credentials", params={"cursor": good, "offset": 2}), 422, field="offset"
    )


def test_offset_still_pages_and_answers_a_cursor(env: Env) -> None:
    _fleet(env)
    everything = [c["id"] for c in _walk(env, "credentials", 50)]
    page = env.admin.ok("GET", "credentials", params={"limit": 4, "offset": 4})
    assert [c["id"] for c in page["items"]] == everything[4:8]
    assert page["offset"] == 4
    after = env.admin.ok("GET", "credentials", params={"limit": 4, "cursor": page["next"]})
    assert [c["id"] for c in after["items"]] == everything[8:12]
    before = env.admin.ok("GET", "credentials", params={"limit": 4, "cursor": page["prev"]})
    assert [c["id"] for c in before["items"]] == everything[:4]


def test_audit_cursor_walks_newest_first(env: Env) -> None:
    _fleet(env)
    everything = env.audit()
    assert len(everything) >= 13
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)
    for limit in (1, 3, 7):
        assert [e["id"] for e in _walk(env, "audit", limit)] == ids
    walked = _walk(env, "audit", 2, action="credential.create")
    assert [e["id"] for e in walked] == [e["id"] for e in env.audit(action="credential.create")]
    page = env.admin.ok("GET", "audit", params={"limit": 3})
    back = env.admin.ok(
        "GET",
        "audit",
        params={
            "limit": 3,
            "cursor": env.admin.ok("GET", "audit", params={"limit": 3, "cursor": page["next"]})[
                "prev"
            ],
        },
    )
    assert [e["id"] for e in back["items"]] == ids[:3]


# --------------------------------------------------------------------------- superseded


def _oracle(rows: list[Any]) -> dict[str, str]:
    """Each active credential's slot's newest, as the correlated subquery defined it: the
    active peer with the highest seq, then id."""
    newest: dict[str, tuple[int, str]] = {}
    for r in rows:
        if r.state == "active":
            newest[r.slot] = max(newest.get(r.slot, (r.seq, r.id)), (r.seq, r.id))
    return {slot: key[1] for slot, key in newest.items()}


def test_superseded_equals_the_old_answer_on_a_varied_store(env: Env) -> None:
    rng = random.Random(16)  # noqa: S311 - a fixed, varied store, not a secret
    env.cluster("c1")
    env.cluster("c2")
    env.project("web")
    env.namespace("shop", "web")
    env.namespace("till", "web")
    made = []
    for i in range(60):
        scope = rng.choice(["cluster", "project", "namespace"])
        extra: dict[str, Any] = {}
        if scope == "project":
            extra["project"] = "web"
        elif scope == "namespace":
            extra["namespace"] = rng.choice(["shop", "till"])
        made.append(
            env.cred(
                f"c-{i}",
                cluster="c1" if scope != "cluster" else rng.choice(["c1", "c2"]),
                scope=scope,
                # A few addresses: many credentials share a slot.
                server=rng.choice(["a.example.com", "b.example.com", "c.example.com:5000"]),
                active=rng.random() < 0.8,
                **extra,
            )
        )
    for c in rng.sample(made, 10):
        env.admin.ok("POST", f"credentials/{c['id']}/{rng.choice(['activate', 'deactivate'])}")
    with env.server.reading() as session:
        rows = session.execute(select(Credential)).scalars().all()
        newest = _oracle(rows)
        by_id = {r.id: r for r in rows}
        for cluster in {r.cluster_id for r in rows}:
            got = sorted(r.id for r in svc.effective_rows(session, cluster))
            want = sorted(
                r.id
                for r in rows
                if r.cluster_id == cluster and r.state == "active" and newest[r.slot] == r.id
            )
            assert got == want
    listed = _walk(env, "credentials", 7)
    assert len(listed) == 60
    for c in listed:
        r = by_id[c["id"]]
        want = newest[r.slot] if r.state == "active" and newest[r.slot] != r.id else None
        assert c["superseded_by"] == want, c
        assert c["effective"] == (r.state == "active" and want is None)
    for state, test in (("effective", False), ("superseded", True)):
        names = {c["name"] for c in _walk(env, "credentials", 5, state=state)}
        assert names == {
            c["name"]
            for c in listed
            if c["state"] == "active" and (c["superseded_by"] is not None) == test
        }
    for ns in ("shop", "till"):
        effective = env.admin.ok(
            "GET", f"namespaces/{ns}/effective-credentials", params={"cluster": "c1"}
        )
        for item in effective["items"]:
            assert newest[by_id[item["id"]].slot] == item["id"]


# --------------------------------------------------------------------------- statements


@contextmanager
def _counting(env: Env) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = env.server.db.engine

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_listing_takes_the_same_statements_whatever_its_rows(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    env.namespace("shop", "web")

    def counts() -> tuple[int, ...]:
        found = []
        for path, params in (
            ("credentials", {"limit": 500}),
            ("credentials", {"limit": 500, "project": "web"}),
            ("credentials", {"limit": 500, "state": "superseded"}),
            ("namespaces/shop/effective-credentials", {"cluster": "c1"}),
            ("audit", {"limit": 500}),
        ):
            with _counting(env) as statements:
                env.admin.ok("GET", path, params=params)
            found.append(len(statements))
        return tuple(found)

    for i in range(4):  # few-3 supersedes few-0: every listing has rows
        env.cred(f"few-{i}", scope="namespace", namespace="shop", server=f"r{i % 3}.example.com")
    few = counts()
    for i in range(40):
        scope = ("namespace", "project", "cluster")[i % 3]
        env.cred(
            f"many-{i}",
            scope=scope,
            namespace="shop" if scope == "namespace" else None,
            project="web" if scope == "project" else None,
            server=f"m{i % 5}.example.com",
        )
    assert counts() == few


def test_every_sort_walks_every_row_once_forward_and_back(env: Env) -> None:
    """Each sort a listing takes is a total order the cursors follow, on either store: a time
    (updated) read back from the cursor's text included."""
    _fleet(env)
    env.admin.ok(
        "POST", f"credentials/{env.admin.ok('GET', 'credentials')['items'][3]['id']}/deactivate"
    )
    everything = env.admin.ok("GET", "credentials", params={"limit": 500})["items"]
    for sort in ("server", "-server", "scope", "state", "-state", "updated", "-updated", "-name"):
        field = {"updated": "updated_at"}.get(sort.lstrip("-"), sort.lstrip("-"))
        want = sorted(everything, key=lambda c: (c[field], c["id"]), reverse=sort[0] == "-")
        for limit in (1, 4):
            walked = _walk(env, "credentials", limit, sort=sort)
            assert [c["id"] for c in walked] == [c["id"] for c in want], (sort, limit)
        # Back from the last page by `prev`, the same order reversed.
        page = env.admin.ok("GET", "credentials", params={"limit": 3, "sort": sort, "offset": 12})
        back = list(page["items"])
        while page["prev"]:
            page = env.admin.ok(
                "GET", "credentials", params={"limit": 3, "sort": sort, "cursor": page["prev"]}
            )
            back = page["items"] + back
        assert [c["id"] for c in back] == [c["id"] for c in want], sort
    assert_error(env.admin.get("credentials", params={"sort": "colour"}), 422, field="sort")
