"""A real PostgreSQL 15 (tests/pg.py) for the module's tests, and a fresh database on it per
test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from tests import pg
from tests.tools import missing


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    reason = pg.available()
    if reason:
        missing(f"PostgreSQL: {reason}; these tests do not run")
    with pg.postgres() as url:
        yield url


@pytest.fixture
def postgres(postgres_server: str) -> Callable[[str], str]:
    """A new, empty database on the PostgreSQL server; returns its URL."""

    def make(name: str) -> str:
        base = postgres_server.rsplit("/", 1)[0]
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"{base}/{name}"

    return make
