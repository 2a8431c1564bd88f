"""A running sync against Kubernetes API servers, with a real store behind it.

The store is the server's own (SQLite in a temporary data directory), changed through the
service layer as the API would change it. Cluster c1 of `world` is the real control plane
(kube-apiserver, etcd and the controllers); the `tests/kube` fake stands in only where a test
injects faults, counts requests or needs a second cluster. Either is reached by the product's
lightkube client through a kubeconfig file.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pullkeeper.services import clusters, credentials, sync
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import Cluster, Credential
from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.real import RealCluster

T = TypeVar("T")
MANAGED = "app.kubernetes.io/managed-by=pullkeeper"
Kube = FakeApiServer | RealCluster


def eventually(check: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """check() once it returns something truthy; fails with the last value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {timeout} s: {what or check}; last: {value!r}\n{_threads()}"
            )
        time.sleep(0.02)


def _threads() -> str:
    """Where every thread is: a sync that stopped moving shows where it waits."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return "\n".join(
        f"--- thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame)[-8:])
        for ident, frame in sys._current_frames().items()
    )


@dataclass
class World:
    server: Server
    manager: sync.SyncManager
    kubes: dict[str, Kube]
    tmp: Path
    passwords: dict[str, str] = field(default_factory=dict)

    def cluster(self, name: str, kube: Kube | None = None, **kw: Any) -> str:
        """Register a cluster (reached through the API server's kubeconfig, or `kubeconfig=`)."""
        if kube is not None:
            self.kubes[name] = kube
            kw.setdefault("kubeconfig", str(kube.kubeconfig(self.tmp / f"{name}.kubeconfig")))
        with self.server.transaction() as session:
            return clusters.create_cluster(session, SYSTEM, name, **kw).id

    def project(self, name: str, cluster: str = "c1") -> str:
        with self.server.transaction() as session:
            c = clusters.get_cluster(session, SYSTEM, cluster)
            return clusters.create_project(session, SYSTEM, c, name).id

    def namespace(
        self, name: str, labels: dict[str, str] | None = None, cluster: str = "c1"
    ) -> None:
        """Create a namespace in the cluster (what `kubectl create namespace` does)."""
        meta: dict[str, Any] = {"name": name}
        if labels:
            meta["labels"] = labels
        self.kubes[cluster].create("namespaces", {"metadata": meta})

    def cred(
        self,
        name: str,
        scope: str = "cluster",
        *,
        cluster: str = "c1",
        project: str | None = None,
        namespace: str | None = None,
        server: str = "registry.example.com",
        password: str | None = None,
        **kw: Any,
    ) -> str:
        password = password or f"pw-{name}-7Hq2"
        self.passwords[name] = password
        with self.server.transaction() as session:
            c = clusters.get_cluster(session, SYSTEM, cluster)
            p = clusters.get_project(session, SYSTEM, project, c) if project else None
            s = credentials.resolve_scope(session, SYSTEM, scope, c, p, namespace)
            spec = credentials.CredentialSpec(
                name=name,
                scope=s,
                provider="custom",
                server=server,
                username="robot",
                password=password,
                **kw,
            )
            made = credentials.create(session, SYSTEM, self.server.vault, spec)
            return made.id

    def change(self, credential_id: str, **changes: Any) -> None:
        with self.server.transaction() as session:
            cred = session.get(Credential, credential_id)
            assert cred is not None
            if "state" in changes:
                credentials.set_state(session, SYSTEM, cred, changes.pop("state"))
            if changes:
                credentials.update(session, SYSTEM, self.server.vault, cred, changes)

    def delete(self, credential_id: str) -> None:
        with self.server.transaction() as session:
            cred = session.get(Credential, credential_id)
            assert cred is not None
            credentials.delete(session, SYSTEM, cred)

    def secrets(self, cluster: str = "c1") -> dict[tuple[str, str], dict[str, Any]]:
        """Every Secret pullkeeper manages in the cluster, by (namespace, name)."""
        return {
            (s["metadata"]["namespace"], s["metadata"]["name"]): s
            for s in self.kubes[cluster].objects("secrets")
            if (s["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
            == "pullkeeper"
        }

    def where(self, name: str, cluster: str = "c1") -> list[str]:
        return sorted(ns for ns, n in self.secrets(cluster) if n == name)

    def loop(self, cluster: str = "c1") -> sync.ClusterSync:
        with self.server.reading() as session:
            cid = session.query(Cluster.id).filter(Cluster.name == cluster).scalar()
        return eventually(lambda: self.manager.loops.get(cid), what=f"a loop for {cluster}")

    def status(self, credential_id: str) -> dict[tuple[str, str], tuple[str, str]]:
        with self.server.reading() as session:
            cred = session.get(Credential, credential_id)
            assert cred is not None
            found = sync.status_of(self.server, cred)
        return {(s["cluster"], s["namespace"]): (s["state"], s["reason"]) for s in found["items"]}


def password_of(secret: dict[str, Any]) -> str:
    """The password a delivered Secret carries ("" when it carries none)."""
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entries = list((config.get("auths") or {}).values())
    password: str = entries[0]["password"] if len(entries) == 1 else ""
    return password


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Servers with a running sync; the fakes registered in them are stopped afterwards."""
    made: list[World] = []

    def make(**settings: Any) -> World:
        options = {"sync_poll_seconds": 0.2, **settings}
        server = Server.open(Settings(data=tmp_path / "data", **options))
        manager = sync.start(server)
        world = World(server, manager, {}, tmp_path)
        made.append(world)
        return world

    yield make
    for world in made:
        world.manager.stop()
        world.server.close()
        for kube in world.kubes.values():
            if isinstance(kube, FakeApiServer):
                kube.stop()


@pytest.fixture
def world(make_world: Callable[..., World], real_kube: RealCluster) -> World:
    """One cluster c1 on the real API server, with a project web."""
    w = make_world()
    w.cluster("c1", real_kube)
    w.project("web")
    return w


@pytest.fixture
def fake_world(make_world: Callable[..., World]) -> World:
    """One cluster c1 on the fake (faults, request counts), with a project web."""
    w = make_world()
    w.cluster("c1", FakeApiServer().start())
    w.project("web")
    return w
