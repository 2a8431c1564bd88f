"""Workloads in one cluster: Deployments created, pod templates read and given pull secrets,
pods and events read back. Objects are plain dicts; failures are `KubeError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast

from lightkube import ALL_NS, Client
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResourceG
from lightkube.resources.apps_v1 import DaemonSet, Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import Event, Pod, Secret
from lightkube.types import PatchType

from pullkeeper.kube.api import KubeError, translated

__all__ = ["WorkloadAPI"]

_Obj = dict[str, Any]
_T = TypeVar("_T")
_RESOURCES: dict[str, type[NamespacedResourceG]] = {
    "Deployment": Deployment,
    "StatefulSet": StatefulSet,
    "DaemonSet": DaemonSet,
}


def _translated(call: Callable[[], _T], what: str, verb: str = "", resource: str = "") -> _T:
    """kube.api's translation, plus an answer lightkube cannot read as the kind it asked for."""
    try:
        return translated(call, what, verb, resource)
    except ValueError as e:  # msgspec's ValidationError: a field the kind requires is missing
        raise KubeError(f"{what}: the API server's answer is not a valid object: {e}") from None


def _dict(obj: Any) -> _Obj:
    out: _Obj = obj.to_dict()
    return out


class WorkloadAPI:
    """The workload calls of one cluster, on a lightkube client it closes when done."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __enter__(self) -> WorkloadAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()

    def create_deployment(self, manifest: _Obj) -> _Obj:
        meta = manifest["metadata"]
        return _translated(
            lambda: _dict(self._client.create(cast(Deployment, Deployment.from_dict(manifest)))),
            f"creating Deployment {meta['namespace']}/{meta['name']}",
            "create",
            "deployments",
        )

    def get(self, kind: str, namespace: str, name: str) -> _Obj | None:
        """A Deployment, StatefulSet or DaemonSet; None when there is none of that name."""
        resource = _RESOURCES[kind]

        def call() -> _Obj | None:
            try:
                found = _dict(self._client.get(resource, name, namespace=namespace))
            except ApiError as e:
                if e.status.code == 404:
                    return None
                raise
            found.setdefault("kind", kind)
            return found

        return _translated(call, f"reading {kind} {namespace}/{name}", "get", kind.lower() + "s")

    def every_workload(self, namespace: str | None = None) -> list[_Obj]:
        """Every Deployment, StatefulSet and DaemonSet of the cluster (or of one namespace):
        three lists, however many namespaces there are."""
        found: list[_Obj] = []
        where = namespace or ALL_NS
        for kind, resource in _RESOURCES.items():

            def call(resource: type[NamespacedResourceG] = resource) -> list[_Obj]:
                return [_dict(o) for o in self._client.list(resource, namespace=where)]

            listed = _translated(call, f"listing the {kind}s", "list", kind.lower() + "s")
            found += [o | {"kind": kind} for o in listed]
        return found

    def every_pod(self, namespace: str | None = None) -> tuple[list[_Obj], list[_Obj]]:
        """Every pod and ReplicaSet of the cluster (or of one namespace): what tells whose
        pods are whose, two lists."""
        where = namespace or ALL_NS
        pods = _translated(
            lambda: [_dict(p) for p in self._client.list(Pod, namespace=where)],
            "listing the pods",
            "list",
            "pods",
        )
        sets = _translated(
            lambda: [_dict(r) for r in self._client.list(ReplicaSet, namespace=where)],
            "listing the ReplicaSets",
            "list",
            "replicasets",
        )
        return pods, sets

    def pods(self, namespace: str, labels: dict[str, str]) -> list[_Obj]:
        return _translated(
            lambda: [
                _dict(p)
                for p in self._client.list(Pod, namespace=namespace, labels=dict(labels.items()))
            ],
            f"listing the pods of namespace {namespace}",
            "list",
            "pods",
        )

    def replicasets(self, namespace: str, labels: dict[str, str]) -> list[_Obj]:
        return _translated(
            lambda: [
                _dict(r)
                for r in self._client.list(
                    ReplicaSet, namespace=namespace, labels=dict(labels.items())
                )
            ],
            f"listing the ReplicaSets of namespace {namespace}",
            "list",
            "replicasets",
        )

    def events(self, namespace: str) -> list[_Obj]:
        return _translated(
            lambda: [_dict(e) for e in self._client.list(Event, namespace=namespace)],
            f"listing the events of namespace {namespace}",
            "list",
            "events",
        )

    def has_secret(self, namespace: str, name: str) -> bool:
        def call() -> bool:
            try:
                self._client.get(Secret, name, namespace=namespace)
            except ApiError as e:
                if e.status.code == 404:
                    return False
                raise
            return True

        return _translated(call, f"reading Secret {namespace}/{name}", "get", "secrets")

    def set_pull_secrets(
        self, kind: str, namespace: str, name: str, resource_version: str, names: Sequence[str]
    ) -> _Obj:
        """Set the pod template's imagePullSecrets to these, if the workload is still at
        resource_version (else 409): a merge patch carrying the resourceVersion, since a
        failed JSON-patch `test` is a 422 the API server words like any other bad patch."""
        body = {
            "metadata": {"resourceVersion": resource_version},
            "spec": {"template": {"spec": {"imagePullSecrets": [{"name": n} for n in names]}}},
        }
        resource = _RESOURCES[kind]
        return _translated(
            lambda: _dict(
                self._client.patch(
                    resource, name, body, namespace=namespace, patch_type=PatchType.MERGE
                )
            ),
            f"adding imagePullSecrets to {kind} {namespace}/{name}",
            "patch",
            kind.lower() + "s",
        )
