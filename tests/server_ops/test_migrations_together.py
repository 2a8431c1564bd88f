"""Replicas that start together on a new PostgreSQL database: one runs the schema migrations
while the others wait for it (an advisory lock), and every one of them comes up."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg

from pullkeeper.store import db

from . import Serve

REPLICAS = 4


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_db_upgrade_run_by_several_replicas_at_once_migrates_once(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    url = postgres("together")
    procs = []
    for i in range(REPLICAS):
        args, env = Serve(tmp_path / f"r{i}", url).command("db", "upgrade")
        procs.append(
            subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    outcomes = [(p.wait(timeout=120), *(s.decode() for s in p.communicate())) for p in procs]
    assert outcomes == [(0, "the schema is up to date\n", "")] * REPLICAS
    with psycopg.connect(url) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [(_head(),)]


def test_replicas_started_together_on_a_new_database_all_become_ready(
    tmp_path: Path, postgres: Callable[[str], str]
) -> None:
    url = postgres("started")
    keys = {"PULLKEEPER_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
    servers = [Serve(tmp_path / f"s{i}", url, env=keys) for i in range(3)]
    try:
        for s in servers:
            s.launch()
        for s in servers:
            s.wait_ready(timeout=120)
    finally:
        for s in servers:
            s.stop()
    with psycopg.connect(url) as conn:
        admins = conn.execute("SELECT count(*) FROM users WHERE username = 'admin'").fetchone()
    assert admins == (1,)
