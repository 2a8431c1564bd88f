"""The Helm chart on the real Kubernetes API server: every object it renders, with every
option on, accepted by `kubectl apply --dry-run=server`; installed for real with Helm, its
webhook configurations pointing at its Service, its RBAC bound to its ServiceAccount with
what the sync needs and no more; an upgrade keeping the webhook's CA and the admin's token;
and values that cannot work refused by `helm install` before anything is made."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import CHART, NAMESPACE, Helm, Obj
from tests.kube.real import RealCluster

SA = f"system:serviceaccount:{NAMESPACE}:pullkeeper"


def _crd(group: str, kind: str, plural: str) -> Obj:
    """A CRD that takes any object of its kind (what the operator's own would check is the
    operator's business): enough for the API server to accept the chart's objects."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
def cluster(real_kube: RealCluster, helm_built: None) -> Iterator[tuple[RealCluster, Helm]]:
    helm = Helm(real_kube.plane.directory / "kubeconfig")
    try:
        yield real_kube, helm
    finally:
        helm.run("uninstall", "pullkeeper", "-n", NAMESPACE, "--ignore-not-found", check=False)


def _get(kube: RealCluster, kind: str, name: str, namespace: str = "") -> Any:
    """The object as the API server stored it, or None."""
    where = ["-n", namespace] if namespace else []
    done = kube.kubectl("get", kind, name, *where, "-o", "json", "--ignore-not-found")
    return json.loads(done.stdout) if done.stdout.strip() else None


def _can(kube: RealCluster, *what: str) -> bool:
    done = kube.kubectl("auth", "can-i", f"--as={SA}", *what, check=False)
    return done.stdout.strip() == "yes"


def test_every_object_with_every_option_is_accepted_by_the_api_server(
    cluster: tuple[RealCluster, Helm],
) -> None:
    kube, helm = cluster
    kube.apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            _crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
            _crd("cert-manager.io", "Certificate", "certificates"),
            _crd("cert-manager.io", "Issuer", "issuers"),
        ]
    )
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    for sets in (
        (),
        (
            "database.existingSecret=pullkeeper-db",
            "keys.existingSecret=pullkeeper-keys",
            "replicaCount=3",
            "serviceMonitor.enabled=true",
            "webhook.tls.mode=certManager",
            "webhook.cluster=prod",
            "admin.existingSecret=pullkeeper-admin-token",
        ),
        ("webhook.enabled=false", "sync.enabled=false"),
    ):
        rendered = yaml.safe_dump_all(helm.template(*sets))
        done = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
        created = [line for line in done.stdout.splitlines() if line]
        assert created and all(line.endswith("(server dry run)") for line in created), done


def test_installed_the_webhooks_call_its_service_and_its_rbac_binds(
    cluster: tuple[RealCluster, Helm],
) -> None:
    kube, helm = cluster
    helm.run("install", "pullkeeper", str(CHART), "-n", NAMESPACE, "--create-namespace")
    kube._namespaces.append(NAMESPACE)  # removed after the test, with what Helm kept
    service = _get(kube, "services", "pullkeeper-webhook", NAMESPACE)
    assert service is not None
    (port,) = service["spec"]["ports"]
    hooks: dict[str, Any] = {}
    for resource in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        stored = _get(kube, resource, "pullkeeper")
        assert stored is not None, resource
        (hook,) = stored["webhooks"]
        ref = hook["clientConfig"]["service"]
        assert (ref["namespace"], ref["name"], ref["port"]) == (
            NAMESPACE,
            "pullkeeper-webhook",
            port["port"],
        )
        hooks[resource] = hook
    secret = _get(kube, "secrets", "pullkeeper-webhook-tls", NAMESPACE)
    assert secret is not None
    ca = secret["data"]["ca.crt"]
    assert {h["clientConfig"]["caBundle"] for h in hooks.values()} == {ca}

    # What the sync and the webhook need, and nothing beyond.
    assert _can(kube, "create", "secrets", "-n", "shop")
    assert _can(kube, "update", "serviceaccounts", "-n", "shop")
    assert _can(kube, "list", "namespaces")
    assert _can(kube, "patch", "deployments.apps", "-n", "shop")
    assert not _can(kube, "delete", "namespaces")
    assert not _can(kube, "get", "nodes")
    assert not _can(kube, "create", "clusterrolebindings")
    assert not _can(kube, "delete", "deployments.apps", "-n", "shop")

    deployment = _get(kube, "deployments", "pullkeeper", NAMESPACE)
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    token = _get(kube, "secrets", "pullkeeper-admin", NAMESPACE)
    assert token is not None

    # An upgrade keeps the webhook's CA (the API server keeps trusting it) and the admin's
    # token; the value it changes reaches the cluster.
    helm.run(
        "upgrade", "pullkeeper", str(CHART), "-n", NAMESPACE, "--set", "webhook.timeoutSeconds=9"
    )
    stored = _get(kube, "validatingwebhookconfigurations", "pullkeeper")
    assert stored is not None
    (hook,) = stored["webhooks"]
    assert (hook["timeoutSeconds"], hook["clientConfig"]["caBundle"]) == (9, ca)
    again = _get(kube, "secrets", "pullkeeper-webhook-tls", NAMESPACE)
    kept = _get(kube, "secrets", "pullkeeper-admin", NAMESPACE)
    assert again is not None and kept is not None
    assert again["data"] == secret["data"] and kept["data"] == token["data"]
    assert base64.b64decode(kept["data"]["token"]).decode().startswith("pk_")


def test_helm_install_refuses_values_that_cannot_work_before_making_anything(
    cluster: tuple[RealCluster, Helm],
) -> None:
    kube, helm = cluster
    done = helm.run(
        "install",
        "pullkeeper",
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "database.existingSecret=pullkeeper-db",
        check=False,
    )
    assert done.returncode != 0
    assert "keys.existingSecret: 2 replicas must share one key source" in done.stderr
    assert _get(kube, "namespaces", NAMESPACE) is None
    assert _get(kube, "clusterroles", "pullkeeper") is None
    assert helm.run("list", "-A", "-q").stdout.strip() == ""


def test_the_plain_manifests_apply_as_their_header_says(
    cluster: tuple[RealCluster, Helm],
) -> None:
    kube, _ = cluster
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    text = (CHART.parents[1] / "manifests" / "pullkeeper.yaml").read_text()
    done = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=text.replace("Q0FfQlVORExF", ca)
    )
    assert "deployment.apps/pullkeeper created (server dry run)" in done.stdout
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/pullkeeper" in done.stdout
