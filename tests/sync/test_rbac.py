"""The RBAC that `pullkeeper webhook manifests` prints is enough for the sync, and a rule
less gives an error that names the permission to grant: the cluster is reached as the
printed ServiceAccount, with a token the real API server issued for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pullkeeper.services import clusters, policies
from pullkeeper.services.actor import SYSTEM
from tests.integration.conftest import pk_ok
from tests.kube.real import RealCluster
from tests.sync.conftest import World, eventually

PROJECT = "pullkeeper.io/project"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")


def _printed_rbac(tmp_path: Path) -> list[dict[str, Any]]:
    printed = pk_ok("webhook", "manifests", "--data", str(tmp_path / "pk-data"))
    docs = [d for d in yaml.safe_load_all(printed.stdout) if d and d["kind"] in RBAC_KINDS]
    assert [d["kind"] for d in docs] == list(RBAC_KINDS)
    return docs


def _as_service_account(real_kube: RealCluster, docs: list[dict[str, Any]], tmp_path: Path) -> Path:
    """Apply the ServiceAccount and its role, and a kubeconfig with a token issued for it."""
    namespace = docs[0]["metadata"]["namespace"]
    real_kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    real_kube.apply(docs)
    token = real_kube.kubectl("create", "token", "pullkeeper", "-n", namespace).stdout.strip()
    return real_kube.kubeconfig(tmp_path / "sa.kubeconfig", token=token)


def _service_accounts(world: World, names: list[str]) -> None:
    with world.server.transaction() as session:
        c = clusters.get_cluster(session, SYSTEM, "c1")
        policies.put(session, SYSTEM, c, None, {"service_accounts": names})


def _pulls(real_kube: RealCluster, namespace: str) -> list[str]:
    account = real_kube.get("serviceaccounts", "default", namespace) or {}
    return [e["name"] for e in account.get("imagePullSecrets") or []]


def test_the_printed_rbac_is_enough_for_the_sync(
    make_world: Any, real_kube: RealCluster, tmp_path: Path
) -> None:
    world: World = make_world()
    kubeconfig = _as_service_account(real_kube, _printed_rbac(tmp_path), tmp_path)
    world.cluster("c1", real_kube, kubeconfig=str(kubeconfig))
    world.project("web")
    world.namespace("shop", {PROJECT: "web"})
    world.namespace("cart")
    real_kube.create(
        "secrets",
        {"metadata": {"name": "theirs", "namespace": "cart"}, "type": "Opaque", "data": {}},
    )
    wide = world.cred("wide")
    web = world.cred("web-pull", "project", project="web", server="quay.io")
    theirs = world.cred("theirs", server="ghcr.io")
    _service_accounts(world, ["default"])
    eventually(lambda: world.where("wide") == ["cart", "default", "pullkeeper", "shop"])
    eventually(lambda: world.where("web-pull") == ["shop"])
    # Repaired after a hand deletion; a Secret that is not its own left alone.
    real_kube.delete("secrets", "wide", "shop")
    eventually(lambda: "shop" in world.where("wide"), what="restored")
    eventually(lambda: world.status(theirs).get(("c1", "cart"), ("",))[0] == "conflict")
    eventually(
        lambda: sorted(_pulls(real_kube, "shop")) == ["theirs", "web-pull", "wide"], what="listed"
    )
    for cid in (wide, web):
        assert {state for state, _ in world.status(cid).values()} == {"in_sync"}
    # Deactivated: every copy removed.
    world.change(wide, state="inactive")
    eventually(lambda: world.where("wide") == [], what="removed")
    assert world.manager.statuses.errors() == {}


def test_a_missing_rule_names_the_permission_to_grant(
    make_world: Any, real_kube: RealCluster, tmp_path: Path
) -> None:
    docs = _printed_rbac(tmp_path)
    (secrets,) = [r for r in docs[1]["rules"] if r["resources"] == ["secrets"]]
    secrets["verbs"].remove("create")
    world: World = make_world()
    kubeconfig = _as_service_account(real_kube, docs, tmp_path)
    world.cluster("c1", real_kube, kubeconfig=str(kubeconfig))
    world.namespace("shop")
    wide = world.cred("wide")
    eventually(lambda: world.status(wide).get(("c1", "shop"), ("",))[0] == "error")
    _, reason = world.status(wide)[("c1", "shop")]
    assert 'cannot create resource "secrets"' in reason  # the API server's own words
    assert "pullkeeper's account may not create secrets: grant it" in reason
    assert world.manager.statuses.errors() == {}  # listing and watching still work
