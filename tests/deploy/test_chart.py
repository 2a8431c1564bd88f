"""The Helm chart as Helm renders it: every object valid for Kubernetes, the defaults
(SQLite, one replica) and PostgreSQL (replicas, shared keys), the webhook's certificate, the
RBAC and webhook configurations that `pullkeeper webhook manifests` prints, and values that
cannot work refused with a message naming the value."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

import pullkeeper
from tests.deploy.conftest import CHART, NAMESPACE, Helm, Obj, by_kind, one
from tests.integration.conftest import pk

POSTGRES = ("database.existingSecret=pullkeeper-db", "keys.existingSecret=pullkeeper-keys")
# Kinds whose schemas the library has not: a CRD's (checked on an API server with the CRD).
CUSTOM = {"ServiceMonitor", "Certificate", "Issuer"}


def _env(deployment: Obj) -> dict[str, Obj]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def _validate(docs: list[Obj]) -> None:
    for doc in docs:
        if doc["kind"] not in CUSTOM:
            kubernetes_validate.validate(doc, "1.32", strict=True)


def test_the_chart_is_versioned_as_the_package_and_lints(helm: Helm) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == pullkeeper.__version__
    lint = helm.run("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Every value is described by the schema, which refuses any other.
    assert set(values) == set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_defaults_run_one_replica_on_sqlite_in_a_volume(helm: Helm) -> None:
    docs = helm.template()
    _validate(docs)
    kinds = by_kind(docs)
    assert "PodDisruptionBudget" not in kinds  # it would block every drain of one replica
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"ghcr.io/pullkeeper/pullkeeper:{pullkeeper.__version__}"
    assert container["args"] == [
        "serve",
        "--host=0.0.0.0",
        "--port=8080",
        "--data=/var/lib/pullkeeper",
        "--webhook-port=8443",
    ]
    env = _env(deployment)
    assert "PULLKEEPER_DATABASE_URL" not in env and "PULLKEEPER_KEYS_DIR" not in env
    assert env["PULLKEEPER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "pullkeeper-admin",
        "key": "token",
    }
    data = {v["name"]: v for v in pod["volumes"]}["data"]
    assert data["persistentVolumeClaim"]["claimName"] == "pullkeeper-data"
    assert one(docs, "PersistentVolumeClaim")["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep"
    }
    # Non-root, read-only root file system, nothing to escalate to.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    probes = {k: container[k]["httpGet"]["path"] for k in ("livenessProbe", "readinessProbe")}
    assert probes == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    token = base64.b64decode(one(docs, "Secret", "pullkeeper-admin")["data"]["token"]).decode()
    assert token.startswith("pk_") and len(token) >= 32


def test_postgresql_runs_two_replicas_sharing_the_keys_secret_spread_over_nodes(
    helm: Helm,
) -> None:
    docs = helm.template(*POSTGRES)
    _validate(docs)
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    env = _env(deployment)
    assert env["PULLKEEPER_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "pullkeeper-db",
        "key": "url",
    }
    assert env["PULLKEEPER_KEYS_DIR"]["value"] == "/etc/pullkeeper/keys"
    pod = spec["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert volumes["keys"]["secret"]["secretName"] == "pullkeeper-keys"
    assert "PersistentVolumeClaim" not in by_kind(docs)
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == spec["selector"]
    assert helm.template(*POSTGRES, "replicaCount=3")[-1]  # more replicas render too


def test_the_webhook_serves_a_certificate_its_configurations_trust(helm: Helm) -> None:
    docs = helm.template()
    secret = one(docs, "Secret", "pullkeeper-webhook-tls")
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "pullkeeper-webhook.pullkeeper.svc",
        "pullkeeper-webhook.pullkeeper.svc.cluster.local",
    ]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (hook,) = one(docs, kind)["webhooks"]
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    service = one(docs, "Service", "pullkeeper-webhook")
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook"}]

    managed = helm.template("webhook.tls.mode=certManager")
    _validate(managed)
    certificate = one(managed, "Certificate")
    assert certificate["spec"]["secretName"] == "pullkeeper-webhook-tls"
    assert certificate["spec"]["issuerRef"] == {"name": "pullkeeper-selfsigned", "kind": "Issuer"}
    hooks = one(managed, "MutatingWebhookConfiguration")
    assert hooks["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "pullkeeper/pullkeeper-webhook-tls"
    }
    assert "caBundle" not in hooks["webhooks"][0]["clientConfig"]  # cert-manager injects it
    assert "Secret" not in {d["kind"] for d in managed if "webhook" in d["metadata"]["name"]}

    off = by_kind(helm.template("webhook.enabled=false"))
    assert "MutatingWebhookConfiguration" not in off and "ValidatingWebhookConfiguration" not in off
    assert [s["metadata"]["name"] for s in off["Service"]] == ["pullkeeper"]


@pytest.mark.parametrize("templates", [True, False])
def test_rbac_and_webhook_configurations_are_what_webhook_manifests_prints(
    helm: Helm, tmp_path: Path, templates: bool
) -> None:
    """One truth: the chart holds the rules, selector and settings the code prints."""
    chart = helm.template(
        "webhook.cluster=prod",
        "webhook.excludedNamespaces={kube-system,monitoring}",
        "webhook.failurePolicy.mutate=Fail",
        "webhook.timeoutSeconds=7",
        f"webhook.templates={str(templates).lower()}",
    )
    flags = ["--exclude-namespace", "kube-system", "--exclude-namespace", "monitoring"]
    printed = pk(
        "webhook",
        "manifests",
        "--data",
        str(tmp_path),
        "-n",
        NAMESPACE,
        "--service",
        "pullkeeper-webhook",
        "--cluster",
        "prod",
        "--mutate-failure-policy",
        "Fail",
        "--timeout",
        "7",
        *flags,
        *([] if templates else ["--pods-only"]),
    )
    assert printed.returncode == 0, printed.describe()
    code = [d for d in yaml.safe_load_all(printed.stdout) if d]
    assert one(chart, "ClusterRole")["rules"] == one(code, "ClusterRole")["rules"]
    binding = one(chart, "ClusterRoleBinding")
    assert binding["subjects"] == one(code, "ClusterRoleBinding")["subjects"]
    assert binding["roleRef"]["name"] == one(chart, "ClusterRole")["metadata"]["name"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (ours,) = one(chart, kind)["webhooks"]
        (theirs,) = one(code, kind)["webhooks"]
        for hook in (ours, theirs):
            del hook["clientConfig"]["caBundle"]
        assert ours == theirs
    (hook,) = one(chart, "ValidatingWebhookConfiguration")["webhooks"]
    assert hook["clientConfig"]["service"] == {
        "namespace": NAMESPACE,
        "name": "pullkeeper-webhook",
        "path": "/admission/validate/prod",
        "port": 443,
    }
    # The webhook itself passes the same namespaces through.
    env = _env(one(chart, "Deployment"))
    excluded = json.loads(env["PULLKEEPER_ADMISSION_EXCLUDED_NAMESPACES"]["value"])
    assert excluded == ["pullkeeper", "kube-system", "monitoring"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("replicaCount=2",),
            "replicaCount: SQLite (no database.url or database.existingSecret) runs one "
            "replica, not 2",
        ),
        (("database.existingSecret=db",), "keys.existingSecret: 2 replicas must share one key"),
        (("webhook.tls.mode=none",), "at '/webhook/tls/mode': value must be one of"),
        (("webhook.tls.mode=existingSecret",), "webhook.tls.existingSecret: with webhook.tls"),
        (
            ("webhook.tls.mode=existingSecret", "webhook.tls.existingSecret=tls"),
            "webhook.tls.caBundle: with webhook.tls.mode existingSecret",
        ),
        (
            ("database.url=postgresql://u:secret@db/pk", "keys.existingSecret=k"),
            "database.url: it holds a password",
        ),
        (("database.url=mysql://db/pk",), "at '/database/url': 'mysql://db/pk' does not match"),
        (("replicaCount=0",), "at '/replicaCount': minimum: got 0, want 1"),
        (("webhok.enabled=false",), "additional properties 'webhok' not allowed"),
        (("webhook.failurePolicy.validate=Deny",), "at '/webhook/failurePolicy/validate'"),
    ],
)
def test_values_that_cannot_work_are_refused_naming_the_value(
    helm: Helm, sets: tuple[str, ...], message: str
) -> None:
    said = helm.refused(*sets)
    assert message in said
    assert "secret@" not in said  # the password of a refused URL is not repeated


PLAIN = CHART.parents[1] / "manifests" / "pullkeeper.yaml"
PLAIN_SETS = (
    "admin.existingSecret=pullkeeper-admin",
    "webhook.tls.mode=existingSecret",
    "webhook.tls.existingSecret=pullkeeper-webhook-tls",
    "webhook.tls.caBundle=Q0FfQlVORExF",
)


def test_the_plain_manifests_are_the_chart_rendered_as_their_header_says(helm: Helm) -> None:
    text = PLAIN.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    for value in PLAIN_SETS:
        assert f"--set {value}" in header
    assert [d for d in yaml.safe_load_all(text) if d] == helm.template(*PLAIN_SETS), (
        "deploy/manifests/pullkeeper.yaml is not the chart rendered: render it again with the "
        "command in its header"
    )
    # Nothing secret in them: no key, no token, no generated certificate.
    assert "PRIVATE KEY" not in text and "kind: Secret\n" not in text
