"""The admission index: a full rebuild against an incremental update, and commit to visible.

One SQLite store holds one cluster with 1,000 namespaces in 50 projects (20 each) and
20,000 active credentials, each at its own registry host: 18,000 namespace-scoped (18 per
namespace), 1,900 project-scoped (38 per project), 100 cluster-scoped. The rows are
inserted in bulk (the service layer would take minutes to make them); the measured
changes go through the service layer, as the API makes them.

Interleaved rounds; each round times a full rebuild (what the index did on every write
before), then one change of each kind: a namespace-, a project- and a cluster-scoped
credential (de)activated, and the cluster policy's allowlist set or cleared. For each
change: the incremental update alone (the index thread's work) and the time from the
commit returning until a reader of the index sees the change (the index thread running,
woken by the server's listener). Medians over the rounds, and the ratio of the full
rebuild to each.

Run: .venv/bin/python benchmarks/admission_index.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from pullkeeper.services import admission_index, clusters, credentials, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store.models import Credential

PROJECTS, PER_PROJECT = 50, 20
PER_NAMESPACE, PER_PROJECT_CREDS, WIDE = 18, 38, 100


def seed(server: Server) -> dict[str, Any]:
    """The store above; the ids of one credential of each scope and where to look for it."""
    with server.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "c1")
        projects = [clusters.create_project(session, SYSTEM, c, f"p{p}") for p in range(PROJECTS)]
        for p, project in enumerate(projects):
            for n in range(PER_PROJECT):
                clusters.put_namespace(session, SYSTEM, c, f"ns-{p}-{n}", project)
    rows: list[dict[str, Any]] = []

    def add(scope: str, project_id: str | None, namespace: str | None) -> None:
        i = len(rows)
        server_ = f"r{i}.example.com"
        rows.append(
            {
                "name": f"cred-{i}",
                "cluster_id": c.id,
                "scope": scope,
                "project_id": project_id,
                "namespace": namespace,
                "provider": "custom",
                "server": server_,
                "address_key": server_,
                "slot": f"{c.id}/{scope}/{project_id or ''}/{namespace or ''}/{server_}",
                "username": "robot",
                "state": "active",
                "seq": i + 1,
                "secret_key_id": "",
                "secret_blob": b"",
            }
        )

    for p, project in enumerate(projects):
        for n in range(PER_PROJECT):
            for _ in range(PER_NAMESPACE):
                add("namespace", None, f"ns-{p}-{n}")
        for _ in range(PER_PROJECT_CREDS):
            add("project", project.id, None)
    for _ in range(WIDE):
        add("cluster", None, None)
    with server.transaction() as session:
        session.execute(insert(Credential), rows)
    by_scope = {r["scope"]: r for r in rows}
    return {"cluster": c.id, "rows": by_scope}


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pk-bench-index-"))
    server = Server.open(Settings(data=base / "data", sync=False))
    seeded = seed(server)
    index = admission_index.Index(server, refresh_seconds=60.0, check_seconds=3600.0)
    update_times: list[float] = []
    timed_update = index._update

    def update(*a: Any) -> None:
        t = time.perf_counter()
        timed_update(*a)
        update_times.append(time.perf_counter() - t)

    index._update = update  # type: ignore[method-assign]
    server.on_change.append(index.changed)
    index.start()
    index.ready.wait(120)
    view = index.cluster("c1")
    assert view is not None and len(view.namespaces) == PROJECTS * PER_PROJECT

    def cred_change(scope: str, namespace: str) -> tuple[Callable[[], None], Callable[[], bool]]:
        row = seeded["rows"][scope]
        image = f"{row['server']}/app"
        state = {"active": True}

        def write() -> None:
            state["active"] = not state["active"]
            with server.transaction() as session:
                cred = session.query(Credential).filter_by(name=row["name"]).one()
                credentials.set_state(
                    session, SYSTEM, cred, "active" if state["active"] else "inactive"
                )

        def visible() -> bool:
            v = index.cluster("c1")
            assert v is not None
            return (row["name"] in v.view(namespace).secrets_for(image)) == state["active"]

        return write, visible

    def policy_change() -> tuple[Callable[[], None], Callable[[], bool]]:
        state = {"allow": None}

        def write() -> None:
            state["allow"] = None if state["allow"] else ("quay.io",)
            with server.transaction() as session:
                c = clusters.get_cluster(session, SYSTEM, "c1")
                allow = list(state["allow"]) if state["allow"] else None
                policies.put(session, SYSTEM, c, None, {"allowlist": allow})

        def visible() -> bool:
            v = index.cluster("c1")
            assert v is not None
            return v.view("ns-49-19").policy.allowlist == state["allow"]

        return write, visible

    ns_row = seeded["rows"]["namespace"]
    changes = {
        "namespace-scoped credential": cred_change("namespace", ns_row["namespace"]),
        "project-scoped credential": cred_change("project", "ns-49-0"),
        "cluster-scoped credential": cred_change("cluster", "ns-0-0"),
        "cluster policy": policy_change(),
    }
    full: list[float] = []
    incremental: dict[str, list[float]] = {k: [] for k in changes}
    visible_after: dict[str, list[float]] = {k: [] for k in changes}
    for _ in range(args.rounds):
        with server.reading() as session:
            t = time.perf_counter()
            index._rebuild(session)  # the index thread is idle: nothing is pending
            full.append(time.perf_counter() - t)
        for name, (write, visible) in changes.items():
            before = len(update_times)
            write()
            t = time.perf_counter()
            while not visible():
                time.sleep(0.0002)
            visible_after[name].append(time.perf_counter() - t)
            while len(update_times) == before:
                time.sleep(0.001)
            incremental[name].append(update_times[-1])
    index.stop()
    server.close()

    rebuild = median_ms(full)
    print(
        f"admission index, {PROJECTS * PER_PROJECT} namespaces, "
        f"{PROJECTS * PER_PROJECT * PER_NAMESPACE + PROJECTS * PER_PROJECT_CREDS + WIDE} "
        f"credentials, {args.rounds} interleaved rounds, medians"
    )
    print(f"python {platform.python_version()} on {platform.machine()}, SQLite")
    print()
    print(
        f"{'change':<30} {'full rebuild ms':>16} {'update ms':>10} {'visible ms':>11} "
        f"{'rebuild/update':>15}"
    )
    for name in changes:
        update_ms = median_ms(incremental[name])
        print(
            f"{name:<30} {rebuild:>16.1f} {update_ms:>10.2f} "
            f"{median_ms(visible_after[name]):>11.2f} {rebuild / update_ms:>14.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
