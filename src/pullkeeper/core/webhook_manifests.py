"""The Kubernetes objects that install pullkeeper's admission webhook and its permissions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pullkeeper.core.delivery import EXCLUDE_LABEL

NAME = "pullkeeper"
# What pullkeeper's account needs in a cluster: the ClusterRole below, and what a cluster's
# "Test connection" checks its access against.
CLUSTER_ROLE_RULES: tuple[dict[str, list[str]], ...] = (
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts"],
        "verbs": ["get", "list", "watch", "update"],
    },
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
)
_TEMPLATE_RULES = [
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"]},
]


@dataclass(frozen=True, slots=True)
class Options:
    ca_bundle: str  # base64 PEM
    namespace: str = NAME  # where pullkeeper runs: never admitted by itself
    service: str = NAME
    service_port: int = 443
    url: str | None = None  # outside the cluster: https://host:port instead of the Service
    cluster: str | None = None  # which registered cluster the webhook answers for
    mutate_failure_policy: str = "Ignore"
    validate_failure_policy: str = "Fail"
    timeout_seconds: int = 5
    templates: bool = True
    # Never sent to the webhook, besides its own namespace: kube-system's pods start even
    # when pullkeeper cannot answer a webhook whose failure policy is Fail.
    excluded_namespaces: tuple[str, ...] = ("kube-system",)


def _client(o: Options, path: str) -> dict[str, Any]:
    # The API server refuses a query string in a webhook's URL, and wants every segment of a
    # Service path to be a DNS-1123 subdomain: a cluster name (a DNS label) is one.
    if o.cluster:
        path += f"/{o.cluster}"
    config: dict[str, Any] = {"caBundle": o.ca_bundle}
    if o.url:
        config["url"] = o.url.rstrip("/") + path
    else:
        config["service"] = {
            "namespace": o.namespace,
            "name": o.service,
            "path": path,
            "port": o.service_port,
        }
    return config


def _rules(o: Options) -> list[dict[str, Any]]:
    rules = [{"apiGroups": [""], "resources": ["pods"]}]
    if o.templates:
        rules += _TEMPLATE_RULES
    return [
        {
            "apiGroups": r["apiGroups"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": r["resources"],
            "scope": "Namespaced",
        }
        for r in rules
    ]


def _selector(o: Options) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": list(dict.fromkeys([o.namespace, *o.excluded_namespaces])),
            },
            {"key": EXCLUDE_LABEL, "operator": "NotIn", "values": ["true"]},
        ]
    }


def _hook(o: Options, name: str, path: str, failure: str) -> dict[str, Any]:
    return {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": _client(o, path),
        "rules": _rules(o),
        "namespaceSelector": _selector(o),
        "failurePolicy": failure,
        "sideEffects": "None",
        "timeoutSeconds": o.timeout_seconds,
        "matchPolicy": "Equivalent",
    }


def manifests(o: Options) -> list[dict[str, Any]]:
    mutating = _hook(o, "mutate.pullkeeper.io", "/admission/mutate", o.mutate_failure_policy)
    # Mutated again when another webhook changed the pod after pullkeeper saw it.
    mutating["reinvocationPolicy"] = "IfNeeded"
    validating = _hook(
        o, "validate.pullkeeper.io", "/admission/validate", o.validate_failure_policy
    )
    meta = {"name": NAME, "labels": {"app.kubernetes.io/name": NAME}}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**meta, "namespace": o.namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": [{k: list(v) for k, v in rule.items()} for rule in CLUSTER_ROLE_RULES],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": o.namespace}],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": meta,
            "webhooks": [mutating],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": meta,
            "webhooks": [validating],
        },
    ]
