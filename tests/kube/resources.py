"""The kinds the fake serves, and the discovery and OpenAPI documents kubectl reads to find them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    # Subresources served at .../NAME/SUB (GET, PUT, PATCH change only that part).
    subresources: tuple[str, ...] = ()
    # Whether spec changes bump metadata.generation (the real server does it for workloads).
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """How the real server names the resource in messages: `secrets`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("status",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status",), True),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status",), True),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status",), True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), True),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
)

BY_PLURAL: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
BY_NAME: dict[str, Resource] = {r.plural: r for r in RESOURCES}
GROUP_VERSIONS: tuple[tuple[str, str], ...] = tuple(
    dict.fromkeys((r.group, r.version) for r in RESOURCES)
)


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_PLURAL.get((group, version, plural))


def resource_for(name: str) -> Resource:
    """A resource by plural name (`secrets`, `deployments`): the store's and the tests' key."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"the fake serves no resource {name!r}; known: {sorted(BY_NAME)}") from None


# --- discovery -------------------------------------------------------------------------------


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in GROUP_VERSIONS if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    groups = [g for g in dict.fromkeys(g for g, _ in GROUP_VERSIONS) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in groups]}


def api_group(group: str) -> dict[str, Any] | None:
    if group not in {g for g, _ in GROUP_VERSIONS if g}:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    if (group, version) not in GROUP_VERSIONS:
        return None
    entries: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        entries.append(entry)
        entries.extend(
            {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }
            for sub in r.subresources
        )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


# --- OpenAPI v3 ------------------------------------------------------------------------------
# kubectl reads these only to learn that the server takes `fieldValidation` (so it validates
# nothing on the client side). The documents carry paths and operations, no schemas; without a
# strategic-merge request body kubectl's client-side apply computes its patch from the Go types
# compiled into it, as it does for any built-in kind.


def openapi_v3_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> dict[str, Any]:
    return {
        "paths": {
            openapi_v3_key(g, v): {"serverRelativeURL": f"/openapi/v3/{openapi_v3_key(g, v)}"}
            for g, v in GROUP_VERSIONS
        }
    }


def openapi_v3_document(key: str) -> dict[str, Any] | None:
    for group, version in GROUP_VERSIONS:
        if openapi_v3_key(group, version) == key:
            break
    else:
        return None
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        ns = "/namespaces/{namespace}" if r.namespaced else ""
        params = [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        ]
        paths[f"{r.path_prefix()}{ns}/{r.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
            },
            "put": {
                "operationId": f"replace{r.kind}",
                "x-kubernetes-action": "put",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
            },
        }
        paths[f"{r.path_prefix()}{ns}/{r.plural}"] = {
            "post": {
                "operationId": f"create{r.kind}",
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
