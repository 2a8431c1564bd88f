"""The incremental index equals a fresh build: after random sequences of service-layer writes,
after another process's writes (through the change log, or a rebuild past a gap), and after
the periodic check repairs a difference."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pullkeeper.services import admission_index, clusters, credentials, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.errors import ServiceError
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store import changes
from pullkeeper.store.models import Cluster, Credential, Project, utcnow
from tests.sync.conftest import eventually

IMAGES = (
    "quay.io/team/app:1",
    "quay.io/x:1",
    "ghcr.io/a/b:1",
    "ubuntu:22.04",
    "registry.example.com:5000/y:1",
)
# (provider, server): a Docker Hub credential serves only as the fallback.
SERVERS = (
    ("custom", "quay.io"),
    ("custom", "ghcr.io"),
    ("custom", "registry.example.com:5000"),
    ("dockerhub", "https://index.docker.io/v1/"),
)
CLUSTERS, PROJECTS, NAMESPACES = ("c1", "c2"), ("p1", "p2"), ("n1", "n2", "n3")
CRED_NAMES = ("a", "b", "c", "d")


def assert_index_is_fresh(server: Server, index: admission_index.Index) -> None:
    """Namespace by namespace (and each cluster's fallback): the same policy, the same
    layers, and the same Secrets for every image as a fresh build."""
    with server.reading() as session:
        states = admission_index._build(session)
    fresh = {cid: s.views(None, None) for cid, s in states.items()}
    have = {v.id: v for v in index._views.values()}
    assert set(have) == set(fresh)
    for cid, want in fresh.items():
        got = have[cid]
        assert got.name == want.name and index.cluster(want.name) is got
        assert set(got.namespaces) == set(want.namespaces), want.name
        for name, w in [("", want.fallback), *want.namespaces.items()]:
            g = got.view(name) if name else got.fallback
            assert g.policy == w.policy, (want.name, name)
            for image in IMAGES:
                assert g.secrets_for(image) == w.secrets_for(image), (want.name, name, image)
    assert admission_index._signature(index._views) == admission_index._signature(fresh)


# ---------------------------------------------------------------- random sequences

_cluster = st.sampled_from(CLUSTERS)
_project = st.sampled_from(PROJECTS)
_namespace = st.sampled_from(NAMESPACES)
_create = st.tuples(
    st.just("create"),
    _cluster,
    st.sampled_from(("namespace", "project", "cluster")),
    _project,
    _namespace,
    st.sampled_from(SERVERS),
    st.sampled_from(CRED_NAMES),
    st.booleans(),
)
# Credentials' writes most often; a cluster deleted seldom (it takes everything along).
_ops = st.one_of(
    _create,
    _create,
    _create,
    st.tuples(st.just("edit"), st.integers(0, 20), st.sampled_from(("login", "name", "note"))),
    st.tuples(st.just("state"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("state"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("add_cluster"), _cluster),
    st.tuples(st.just("put_namespace"), _cluster, _namespace, st.none() | _project),
    st.tuples(st.just("delete_cluster"), _cluster),
    st.tuples(st.just("add_project"), _cluster, _project),
    st.tuples(st.just("delete_project"), _cluster, _project),
    st.tuples(st.just("put_namespace"), _cluster, _namespace, st.none() | _project),
    st.tuples(st.just("remove_namespace"), _cluster, _namespace),
    st.tuples(
        st.just("policy"),
        _cluster,
        st.none() | _project,
        st.sampled_from((None, ["quay.io"], ["ghcr.io", "quay.io"])),
    ),
)


def _run(session: Session, server: Server, op: tuple[Any, ...]) -> None:
    def cluster(name: str) -> Cluster:
        return clusters.get_cluster(session, SYSTEM, name)

    def project(c: str, name: str) -> Project:
        return clusters.get_project(session, SYSTEM, name, cluster(c))

    def nth(n: int) -> Credential:
        ids = session.scalars(select(Credential.id).order_by(Credential.seq)).all()
        if not ids:
            raise ServiceError("no credential yet")
        return credentials.get(session, SYSTEM, ids[n % len(ids)])

    kind, *args = op
    if kind == "add_cluster":
        clusters.create_cluster(session, SYSTEM, args[0])
    elif kind == "delete_cluster":
        clusters.delete_cluster(session, SYSTEM, cluster(args[0]))
    elif kind == "add_project":
        clusters.create_project(session, SYSTEM, cluster(args[0]), args[1])
    elif kind == "delete_project":
        clusters.delete_project(session, SYSTEM, project(args[0], args[1]))
    elif kind == "put_namespace":
        c, ns, p = args
        clusters.put_namespace(session, SYSTEM, cluster(c), ns, project(c, p) if p else None)
    elif kind == "remove_namespace":
        ns = clusters.get_namespace(session, SYSTEM, cluster(args[0]), args[1])
        clusters.delete_namespace(session, SYSTEM, ns)
    elif kind == "create":
        c, scope, p, ns, address, name, active = args
        spec = credentials.CredentialSpec(
            name=name,
            scope=credentials.resolve_scope(
                session,
                SYSTEM,
                scope,
                cluster(c),
                project(c, p) if scope == "project" else None,
                ns,
            ),
            provider=address[0],
            server=address[1],
            username=f"u-{name}",
            password="pw-1",
            active=active,
        )
        credentials.create(session, SYSTEM, server.vault, spec)
    elif kind == "edit":
        cred = nth(args[0])
        edit = {
            "login": {"username": cred.username + "x", "password": "pw-2"},
            "name": {"name": cred.name + "x"},
            "note": {"description": "a note"},
        }[args[1]]
        credentials.update(session, SYSTEM, server.vault, nth(args[0]), edit)
    elif kind == "state":
        credentials.set_state(session, SYSTEM, nth(args[0]), "active" if args[1] else "inactive")
    elif kind == "delete":
        credentials.delete(session, SYSTEM, nth(args[0]))
    else:
        c, p, allow = args
        policies.put(
            session, SYSTEM, cluster(c), project(c, p) if p else None, {"allowlist": allow}
        )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated store with its keys, copied for each example (a migration per example
    would cost seconds)."""
    data = tmp_path_factory.mktemp("template") / "data"
    Server.open(Settings(data=data, sync=False)).close()
    return data


@contextmanager
def copied(template: Path) -> Iterator[Server]:
    base = Path(tempfile.mkdtemp(prefix="pk-index-"))
    try:
        shutil.copytree(template, base / "data")
        server = Server.open(Settings(data=base / "data", sync=False))
        try:
            yield server
        finally:
            server.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(_ops, st.booleans()), min_size=1, max_size=30))
def test_random_writes_keep_the_index_equal_to_a_fresh_build(
    template: Path, steps: list[tuple[tuple[Any, ...], bool]]
) -> None:
    with copied(template) as server:
        with server.transaction() as session:  # a start that every sequence builds on
            for name in CLUSTERS:
                c = clusters.create_cluster(session, SYSTEM, name)
                p1 = clusters.create_project(session, SYSTEM, c, "p1")
                p2 = clusters.create_project(session, SYSTEM, c, "p2")
                clusters.put_namespace(session, SYSTEM, c, "n1", p1)
                clusters.put_namespace(session, SYSTEM, c, "n2", p2)
                clusters.put_namespace(session, SYSTEM, c, "n3", None)
        index = admission_index.Index(server, 1.0)  # refreshed by hand, as its thread would
        index.refresh()
        for op, look in steps:
            try:
                with server.transaction() as session:
                    _run(session, server, op)
            except ServiceError:
                pass  # refused (a name taken, a namespace still holding credentials...)
            if look:  # else the changes reach the index together with later ones
                index.refresh()
                assert_index_is_fresh(server, index)
        index.refresh()
        assert_index_is_fresh(server, index)
        assert index.builds == 1  # every change applied incrementally


# ---------------------------------------------------------------- other processes, the check


def _credential(
    server: Server, name: str, scope: str = "cluster", address: str = "quay.io", **at: str
) -> None:
    with server.transaction() as session:
        c = clusters.get_cluster(session, SYSTEM, "c1")
        p = clusters.get_project(session, SYSTEM, at["project"], c) if "project" in at else None
        spec = credentials.CredentialSpec(
            name=name,
            scope=credentials.resolve_scope(session, SYSTEM, scope, c, p, at.get("namespace")),
            provider="custom",
            server=address,
            username="robot",
            password="pw-1",
        )
        credentials.create(session, SYSTEM, server.vault, spec)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two servers on one store; c1 with project web (namespace shop) and namespace tools."""
    settings = Settings(data=tmp_path / "data", sync=False)
    reader, writer = Server.open(settings), Server.open(settings)
    with writer.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "c1")
        web = clusters.create_project(session, SYSTEM, c, "web")
        clusters.put_namespace(session, SYSTEM, c, "shop", web)
        clusters.put_namespace(session, SYSTEM, c, "tools", None)
    yield reader, writer
    reader.close()
    writer.close()


def _secrets(index: admission_index.Index, namespace: str, image: str) -> list[str]:
    view = index.cluster("c1")
    assert view is not None
    return view.view(namespace).secrets_for(image)


def test_another_processes_writes_reach_the_index_through_the_change_log(
    replicas: tuple[Server, Server],
) -> None:
    reader, writer = replicas
    index = admission_index.Index(reader, 1.0)
    index.refresh()
    _credential(writer, "team", "project", "quay.io", project="web")
    _credential(writer, "wide", "cluster", "quay.io")
    index.refresh()  # the reader wrote nothing: only the log brings these in
    assert (index.builds, index.updates) == (1, 1)
    assert _secrets(index, "shop", "quay.io/team/app") == ["team", "wide"]
    assert _secrets(index, "tools", "quay.io/team/app") == ["wide"]
    _credential(writer, "team-new", "project", "quay.io", project="web")  # supersedes "team"
    index.refresh()
    assert _secrets(index, "shop", "quay.io/team/app") == ["team-new", "wide"]
    assert_index_is_fresh(reader, index)


def test_an_index_behind_the_pruned_log_rebuilds(replicas: tuple[Server, Server]) -> None:
    reader, writer = replicas
    index = admission_index.Index(reader, 1.0)
    index.refresh()
    _credential(writer, "first", "namespace", "ghcr.io", namespace="tools")
    _credential(writer, "second", "namespace", "quay.io", namespace="tools")
    with writer.db.session() as session:  # the pruning of rows older than the log keeps
        changes.prune(session, utcnow() + timedelta(days=1))
    index.refresh()
    assert (index.builds, index.updates) == (2, 0)  # "first" was missed: a full rebuild
    assert _secrets(index, "tools", "ghcr.io/x") == ["first"]
    assert_index_is_fresh(reader, index)


def test_the_periodic_check_repairs_a_difference(
    replicas: tuple[Server, Server], caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = replicas
    _credential(writer, "wide", "cluster", "quay.io")
    index = admission_index.Index(reader, 1.0)
    index.refresh()
    assert index.check() is True and index.differences == 0
    # A write the change log missed: straight to the table, no session to see it.
    with writer.db.engine.begin() as conn:
        conn.execute(update(Credential.__table__).values(username="someone-else"))
        conn.execute(update(Credential.__table__).values(state="inactive"))
    index.refresh()
    assert _secrets(index, "shop", "quay.io/x") == ["wide"]  # stale: nothing was logged
    with caplog.at_level(logging.WARNING, "pullkeeper.admission"):
        assert index.check() is False
    assert index.differences == 1
    assert _secrets(index, "shop", "quay.io/x") == []
    assert_index_is_fresh(reader, index)
    message = caplog.records[-1].getMessage()
    assert "c1/shop" in message and "c1/tools" in message and "pw-1" not in message
    assert index.check() is True and index.differences == 1


def test_the_index_thread_checks_on_its_schedule(replicas: tuple[Server, Server]) -> None:
    reader, writer = replicas
    index = admission_index.Index(reader, 0.1, check_seconds=0.2)
    index.start()
    try:
        index.ready.wait(10)
        with writer.db.engine.begin() as conn:  # unlogged, as above
            conn.execute(update(Cluster.__table__).values(name="renamed"))
        eventually(lambda: index.differences == 1, what="the check found the rename")
        assert index.cluster("renamed") is not None and index.cluster("c1") is None
    finally:
        index.stop()


def test_a_deleted_project_leaves_its_namespaces_without_its_credentials_and_policy(
    replicas: tuple[Server, Server],
) -> None:
    reader, writer = replicas
    _credential(writer, "team", "project", "quay.io", project="web")
    with writer.transaction() as session:
        c = clusters.get_cluster(session, SYSTEM, "c1")
        web = clusters.get_project(session, SYSTEM, "web", c)
        policies.put(session, SYSTEM, c, web, {"allowlist": ["quay.io"]})
    index = admission_index.Index(reader, 1.0)
    index.refresh()
    assert _secrets(index, "shop", "quay.io/x") == ["team"]
    with writer.transaction() as session:
        c = clusters.get_cluster(session, SYSTEM, "c1")
        clusters.delete_project(session, SYSTEM, clusters.get_project(session, SYSTEM, "web", c))
    index.refresh()
    assert (index.builds, index.updates) == (1, 1)
    assert _secrets(index, "shop", "quay.io/x") == []
    view = index.cluster("c1")
    assert view is not None and view.view("shop").policy.allowlist is None
    assert_index_is_fresh(reader, index)
