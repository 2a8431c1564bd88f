"""The sync lists again many times in a cluster's life (a resync, an expired watch, a lost
connection); each time its watches stop and its client closes. On a TLS connection, a client
closed while a watch thread still reads it hands that thread's file descriptor to the next
connection opened: the thread then reads the new connection's bytes, and requests fail with
`[SSL: WRONG_VERSION_NUMBER]` or wait for answers another thread took. Replayed here against
the real API server, as the sync does it, twenty times over."""

from __future__ import annotations

import threading
from pathlib import Path

from pullkeeper.kube.api import Access, ClusterAPI
from tests.kube.real import RealCluster


def test_stopping_watches_and_closing_leaves_later_connections_sound(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    access = Access(kubeconfig=str(real_kube.kubeconfig(tmp_path / "kubeconfig")))
    seen: list[str] = []
    for attempt in range(20):
        api = ClusterAPI(access)
        _, version = api.list_namespaces()
        stop = threading.Event()

        def follow(
            api: ClusterAPI = api, version: str = version, stop: threading.Event = stop
        ) -> None:
            for _, obj in api.watch_namespaces(version, 60, stop):
                seen.append(obj["metadata"]["name"])

        watches = [threading.Thread(target=follow, daemon=True) for _ in range(3)]
        for watch in watches:
            watch.start()
        stop.set()
        api.close()  # what the sync does when it lists again
        later = [ClusterAPI(access) for _ in range(4)]
        try:
            for client in later:
                client.list_namespaces()
            # An event on the old watches' streams wakes their threads...
            real_kube.create("namespaces", {"metadata": {"name": f"wake-{attempt}"}})
            # ...which must read nothing of the connections opened since.
            for _ in range(5):
                for client in later:
                    names = [n["metadata"]["name"] for n in client.list_namespaces()[0]]
                    assert f"wake-{attempt}" in names
        finally:
            for client in later:
                client.close()
        for watch in watches:
            watch.join(10)
            assert not watch.is_alive(), "a stopped watch still runs after its next event"
