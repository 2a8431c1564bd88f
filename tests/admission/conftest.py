"""A real server's webhook listener application (its admission index built from a real
store) beside its API application, AdmissionReviews shaped as the Kubernetes API server sends
them, and a way to apply the answer's JSONPatch."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from fastapi.testclient import TestClient

from pullkeeper.api.webhook import create_webhook_app
from pullkeeper.app import create_app
from pullkeeper.services import audit, clusters, credentials, policies
from pullkeeper.services.actor import SYSTEM
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.store import changes
from tests.sync.conftest import eventually

GROUPS = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "ConfigMap": ("", "v1", "configmaps"),
}


def review(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    namespace: str = "shop",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    sub_resource: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview as kube-apiserver 1.32 sends it."""
    kind = obj["kind"]
    group, version, resource = GROUPS[kind]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj.get("metadata", {}).get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def pod(*images: str, name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {
            "containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
            **spec,
        },
    }


def applied(obj: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The object the API server would store: the answer's patch applied to it."""
    response = answer["response"]
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    out: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(obj), patch)
    return out


@dataclass
class Hook:
    server: Server
    client: TestClient  # the webhook listener's application
    api: TestClient  # the API listener's (metrics)

    def post(self, webhook: str, body: Any, **params: str) -> dict[str, Any]:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = self.client.post(f"/admission/{webhook}", content=content, params=params)
        assert answer.status_code == 200, answer.text
        doc: dict[str, Any] = answer.json()
        if isinstance(body, dict):
            assert doc["response"]["uid"] == body["request"]["uid"]
        return doc

    def admission_records(self, count: int) -> list[dict[str, Any]]:
        """The admission audit records, once there are `count` of them: the webhook's writer
        writes them from its queue within a second."""

        def found() -> list[dict[str, Any]]:
            with self.server.reading() as session:
                events, _ = audit.query(session, SYSTEM, limit=1000)
            return [e for e in events if e["action"].startswith("admission.")]

        eventually(lambda: len(found()) >= count, what=f"{count} admission audit records")
        return found()

    def write(self, fn: Any) -> Any:
        """A change to the store, once the webhook's index has it."""
        with self.server.transaction() as session:
            result = fn(session)
        with self.server.reading() as session:
            wanted = changes.newest(session)
        index = self.server.admission.index
        eventually(lambda: index.revision >= wanted, what="the index has the change")
        return result

    def cred(self, name: str, scope: str = "cluster", server: str = "quay.io", **kw: Any) -> str:
        def make(session: Any) -> str:
            c = clusters.get_cluster(session, SYSTEM, "c1")
            p = (
                clusters.get_project(session, SYSTEM, kw.pop("project"), c)
                if "project" in kw
                else None
            )
            s = credentials.resolve_scope(session, SYSTEM, scope, c, p, kw.pop("namespace", None))
            spec = credentials.CredentialSpec(
                name=name,
                scope=s,
                provider="custom",
                server=server,
                username="robot",
                password=f"pw-{name}-x9",
            )
            return credentials.create(session, SYSTEM, self.server.vault, spec).id

        return str(self.write(make))

    def policy(self, project: str | None = None, **values: Any) -> None:
        def put(session: Any) -> None:
            c = clusters.get_cluster(session, SYSTEM, "c1")
            p = clusters.get_project(session, SYSTEM, project, c) if project else None
            policies.put(session, SYSTEM, c, p, values)

        self.write(put)


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Hook]:
    """Cluster c1 with project web (namespaces shop, cart) and namespace tools."""
    server = Server.open(Settings(data=tmp_path / "data", sync=False))
    with server.transaction() as session:
        c = clusters.create_cluster(session, SYSTEM, "c1")
        web = clusters.create_project(session, SYSTEM, c, "web")
        clusters.put_namespace(session, SYSTEM, c, "shop", web)
        clusters.put_namespace(session, SYSTEM, c, "cart", web)
        clusters.put_namespace(session, SYSTEM, c, "tools", None)
    with (
        TestClient(create_webhook_app(server), raise_server_exceptions=False) as client,
        TestClient(create_app(server), raise_server_exceptions=False) as api,
    ):
        yield Hook(server, client, api)
    server.close()


def pull_secrets_added(hook: Any, image: str, namespace: str, cluster: str = "c1") -> list[str]:
    """The imagePullSecrets the webhook's mutation gives a pod of image in namespace."""
    obj = pod(image)
    obj["metadata"]["namespace"] = namespace
    out = applied(obj, hook.mutate(review(obj, namespace=namespace)["request"], cluster))
    return [e["name"] for e in out["spec"].get("imagePullSecrets") or []]
