"""Engines, sessions (their typed changes tracked: store/changes.py) and schema migrations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from pullkeeper.store import changes

__all__ = ["Database", "alembic_config", "ping", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "pullkeeper_write"


def _private_sqlite_files(url: str) -> None:
    """Make a SQLite store's database file, and so its WAL and SHM files, mode 0600.

    SQLite creates a database file 0644 (less the umask) and gives the -wal and -shm files
    it makes later the database file's mode. So the database file is created 0600 before
    SQLite opens it, and the files of a store made by an older release are narrowed too:
    they hold every credential's metadata and the users' password hashes, whatever the
    mode of the directory they are in.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:
        return  # SQLite cannot open it either, and says why when the store is opened
    for suffix in ("", "-wal", "-shm", "-journal"):
        # Not ours to change (another user's file) or not there: left as it is.
        with suppress(OSError):
            os.chmod(path.with_name(path.name + suffix), 0o600)


def _make_engine(url: str, pool_size: int) -> Engine:
    if url.startswith("sqlite"):
        _private_sqlite_files(url)
        # A pooled connection per thread, none closed after use: a new SQLite
        # connection's page cache starts cold.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own BEGIN is turned off so that _begin below decides.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # WAL: readers never wait for the writer; foreign keys for cascades.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Pages read through a shared mapping instead of copied into each connection.
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A writer takes the write lock up front: a deferred transaction that
            # read first could not upgrade once another writer had committed.
            write = conn.get_execution_options().get(_WRITE, True)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


# The PostgreSQL advisory lock that migrations hold: any constant, the same in every release.
_MIGRATION_LOCK = 0x70756C6B  # "pulk"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait here and then find
            # the schema current. (SQLite's BEGIN IMMEDIATE already lets one writer in.)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.engine = _make_engine(url, pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        changes.track(self._sessions)
        self._readers = sessionmaker(
            self.engine.execution_options(**{_WRITE: False}), expire_on_commit=False
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads, so it never waits for the write lock."""
        with self._readers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
