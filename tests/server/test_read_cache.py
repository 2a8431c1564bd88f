"""Listing answers kept until the store changes: asked again with nothing changed, a
listing reads only the store's revision (on a bare connection, so a change another process
commits is seen at once); after any change a listing can show (a credential, its check's
result, a project's name, a namespace's project, a role) the next answer shows it (SQLite
and PostgreSQL, as every server test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, update

from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.read_cache import ReadCache
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store import changes
from pullkeeper.store.models import Credential, utcnow
from tests.server.conftest import Env

LISTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("credentials", {"limit": 50}),
    ("credentials", {"limit": 50, "project": "web"}),
    ("namespaces/shop/effective-credentials", {"cluster": "c1"}),
)


@contextmanager
def _counting(env: Env) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(env.server.db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(env.server.db.engine, "before_cursor_execute", count)


def _fleet(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    env.namespace("shop", "web")
    env.cred("a", scope="namespace", namespace="shop", server="a.example.com")
    env.cred("b", scope="project", project="web", server="b.example.com")


def test_a_listing_asked_again_runs_no_statement_of_its_own(env: Env) -> None:
    _fleet(env)
    for path, params in LISTINGS:
        first = env.admin.ok("GET", path, params=params)
        hits = env.server.reads.hits
        with _counting(env) as statements:
            again = env.admin.ok("GET", path, params=params)
        assert again == first
        # The revision is read on a bare pooled connection, outside SQLAlchemy's execution.
        assert statements == [] and env.server.reads.hits == hits + 1, (path, statements)


def test_a_change_another_process_commits_is_shown_at_once(env: Env) -> None:
    _fleet(env)
    for path, params in LISTINGS:
        env.admin.ok("GET", path, params=params)
    settings = env.server.settings
    other = Server.open(
        Settings(data=settings.data, database_url=settings.database_url, sync=False)
    )
    try:
        with other.transaction() as session:
            session.execute(
                update(Credential).where(Credential.name == "a").values(description="elsewhere")
            )
    finally:
        other.close()
    for path, params in LISTINGS:
        items = env.admin.ok("GET", path, params=params)["items"]
        assert {i["name"]: i["description"] for i in items}["a"] == "elsewhere", path


def test_every_change_a_listing_shows_is_shown_at_once(env: Env) -> None:
    _fleet(env)
    answers = {path: env.admin.ok("GET", path, params=params) for path, params in LISTINGS}
    names = {i["name"]: i for i in answers["credentials"]["items"]}
    assert names["a"]["last_check"] is None
    # A check's result, written as the checks write it: one bulk statement.
    with env.server.transaction() as session:
        session.execute(
            update(Credential)
            .where(Credential.id == names["a"]["id"])
            .values(check_status="ok", checked_at=utcnow())
        )
    listed = env.admin.ok("GET", "credentials", params={"limit": 50})["items"]
    assert {i["name"]: i["last_check"]["status"] for i in listed if i["last_check"]} == {"a": "ok"}
    assert names["b"]["project"] == "web"
    # A project renamed, a credential made.
    env.admin.ok("PATCH", "projects/web", params={"cluster": "c1"}, json={"name": "webshop"})
    listed = env.admin.ok("GET", "credentials", params={"limit": 50})["items"]
    assert {i["name"]: i["project"] for i in listed} == {"a": None, "b": "webshop"}
    env.cred("c", scope="namespace", namespace="shop", server="c.example.com")
    effective = env.admin.ok(
        "GET", "namespaces/shop/effective-credentials", params={"cluster": "c1"}
    )
    assert {i["name"] for i in effective["items"]} == {"a", "b", "c"}


def test_answers_follow_the_askers_rights(env: Env) -> None:
    _fleet(env)
    _, token = env.quick_user("mo")
    mo = env.admin.as_(token)
    assert mo.ok("GET", "credentials", params={"limit": 50})["items"] == []
    everything = env.admin.ok("GET", "credentials", params={"limit": 50})["items"]
    assert len(everything) == 2  # the admin's answer is not the member's, nor theirs his
    env.member("web", "mo", "member")
    seen = mo.ok("GET", "credentials", params={"limit": 50})["items"]
    assert sorted(i["name"] for i in seen) == ["a", "b"]


def test_the_cache_keeps_at_most_its_bytes_the_least_recently_used_forgotten(env: Env) -> None:
    cache = ReadCache(lambda: changes.newest_committed(env.server.db.engine), size_bytes=100)
    made: list[str] = []

    def ask(question: str, size: int = 40) -> bytes:
        def make() -> bytes:
            made.append(question)
            return question.encode().ljust(size, b".")

        return cache.answer(SYSTEM, question, make)

    ask("a"), ask("b"), ask("a")  # a is used again: b is now the least recent
    ask("c")  # 120 bytes: b goes
    ask("a"), ask("c"), ask("b")
    ask("big", 101)  # larger than the whole cache: answered, never kept
    ask("big", 101)
    assert made == ["a", "b", "c", "b", "big", "big"]
    assert (cache.hits, cache.misses) == (3, 6)


def test_an_answer_is_made_again_once_it_is_max_age_old(env: Env) -> None:
    """With no change, an answer is still remade after max_age: a token's state moves with
    the clock alone."""
    now = [100.0]
    cache = ReadCache(
        lambda: changes.newest_committed(env.server.db.engine),
        max_age=60.0,
        clock=lambda: now[0],
    )
    made: list[float] = []

    def ask() -> bytes:
        def make() -> bytes:
            made.append(now[0])
            return str(now[0]).encode()

        return cache.answer(SYSTEM, "q", make)

    assert ask() == b"100.0"
    now[0] = 159.9
    assert ask() == b"100.0"  # kept
    now[0] = 160.0
    assert ask() == b"160.0"  # a minute old: made again, and kept from now
    now[0] = 200.0
    assert ask() == b"160.0"
    assert made == [100.0, 160.0] and (cache.hits, cache.misses) == (2, 2)
