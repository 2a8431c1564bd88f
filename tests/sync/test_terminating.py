"""Namespaces deleted while the sync runs, on the real API server: a namespace stays
Terminating while anything in it holds a finalizer, the cluster refuses new objects there
(403 "... because it is being terminated") and removes the old ones itself."""

from __future__ import annotations

from pathlib import Path

from pullkeeper.kube.api import Access, ClusterAPI, KubeError
from tests.kube.real import RealCluster
from tests.sync.conftest import World, eventually

HOLD = "pullkeeper.test/hold"


def _hold(kube: RealCluster, namespace: str) -> None:
    """Something in the namespace with a finalizer: its deletion waits for us."""
    kube.create(
        "configmaps",
        {"metadata": {"name": "hold", "namespace": namespace, "finalizers": [HOLD]}},
    )


def _release(kube: RealCluster, namespace: str) -> None:
    held = kube.get("configmaps", "hold", namespace)
    if held is not None:
        held["metadata"]["finalizers"] = []
        kube.replace("configmaps", held)


def _creates_in(kube: RealCluster, namespace: str, since: int) -> list[int]:
    """The answers to pullkeeper's Secret creates in the namespace since a point of the log."""
    events, _ = kube.plane.audit("pullkeeper", since)
    return [
        e["responseStatus"]["code"]
        for e in events
        if e["verb"] == "create"
        and (e.get("objectRef") or {}).get("resource") == "secrets"
        and (e.get("objectRef") or {}).get("namespace") == namespace
    ]


def test_a_namespace_deleted_while_syncing_is_let_go(world: World, real_kube: RealCluster) -> None:
    world.namespace("doomed")
    world.namespace("kept")
    _hold(real_kube, "doomed")
    wide = world.cred("wide")
    eventually(lambda: world.where("wide") == ["default", "doomed", "kept"])
    eventually(lambda: len(world.status(wide)) == 3, what="three statuses")

    _, mark = real_kube.plane.audit()
    real_kube.delete("namespaces", "doomed")
    terminating = real_kube.get("namespaces", "doomed")
    assert terminating is not None and terminating["status"]["phase"] == "Terminating"
    # The namespace controller empties it (our Secret too) but for what holds a finalizer.
    eventually(lambda: "doomed" not in world.where("wide"), timeout=30, what="emptied")
    eventually(lambda: ("c1", "doomed") not in world.status(wide), what="its status dropped")
    # A credential made now reaches the live namespaces only.
    later = world.cred("later", server="ghcr.io")
    eventually(lambda: world.where("later") == ["default", "kept"])
    eventually(lambda: set(world.status(later)) == {("c1", "default"), ("c1", "kept")})
    assert {state for state, _ in world.status(later).values()} == {"in_sync"}
    assert _creates_in(real_kube, "doomed", mark) == [], "nothing written into a dying namespace"
    assert "doomed" not in world.where("wide")

    _release(real_kube, "doomed")
    eventually(lambda: real_kube.get("namespaces", "doomed") is None, timeout=30, what="gone")
    assert set(world.status(wide)) == {("c1", "default"), ("c1", "kept")}
    assert {state for state, _ in world.status(wide).values()} == {"in_sync"}


def test_a_create_refused_in_a_terminating_namespace_is_not_an_rbac_error(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    real_kube.create("namespaces", {"metadata": {"name": "closing"}})
    _hold(real_kube, "closing")
    real_kube.delete("namespaces", "closing")
    api = ClusterAPI(Access(kubeconfig=str(real_kube.kubeconfig(tmp_path / "kc"))))
    try:
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "late", "namespace": "closing"},
            "type": "Opaque",
        }
        try:
            api.create_secret(manifest)
        except KubeError as e:
            refused = e
        else:
            raise AssertionError("the API server created a Secret in a terminating namespace")
    finally:
        api.close()
        _release(real_kube, "closing")
    assert refused.status == 403 and refused.terminating
    assert "because it is being terminated" in refused.message
    assert "may not" not in refused.message  # no RBAC advice for it
