"""Workloads that get exactly the pull secrets their images need, and what their rollout says.

`deploy` creates a Deployment whose pod template names, as imagePullSecrets,
the Secrets of exactly the credentials the kubelet would try for its images
(in its order); `status` reads the rollout and the pull events back and, when
a pull failed, adds the server's own pull check of that image in that
namespace; `attach` gives a workload made elsewhere the Secrets it lacks.

Each use case reads the store in one short transaction, talks to the cluster
with none open, and records the change in the audit trail afterwards.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from pullkeeper.core import workloads
from pullkeeper.core.names import InvalidName, validate_label, validate_subdomain
from pullkeeper.core.reference import InvalidReference, parse_normalized_named
from pullkeeper.core.workloads import Container
from pullkeeper.kube.api import Access, KubeError, client_for
from pullkeeper.kube.workloads import WorkloadAPI
from pullkeeper.services import audit, checks, clusters, credentials, kubeconfigs
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from pullkeeper.services.server import Server
from pullkeeper.services.sync.statuses import without_paths
from pullkeeper.store.models import Cluster, Namespace

__all__ = [
    "MAX_REPLICAS",
    "ClusterFailed",
    "attach",
    "containers_of",
    "credentials_for",
    "deploy",
    "listing",
    "naming_secret",
    "plan",
    "status",
]

_log = logging.getLogger("pullkeeper.workloads")
MAX_REPLICAS = 1000


class ClusterFailed(ServiceError):
    """The cluster's API could not be reached or failed: nothing the caller typed is wrong."""

    status, code = 502, "cluster_error"


def _may_use(actor: Actor, project_id: str | None, what: str) -> None:
    if actor.uses(project_id):
        return
    raise Forbidden(f"only an admin, or an owner or member of the namespace's project, can {what}")


def _access(server: Server, cluster: Cluster) -> Access | KubeError:
    """How the cluster is reached; an uploaded kubeconfig that does not decrypt is reported
    by _api, as any other fault of the access settings."""
    try:
        return kubeconfigs.access_of(server.vault, cluster)
    except KubeError as e:
        return e


def _api(cluster: Cluster, access: Access | KubeError, actor: Actor) -> WorkloadAPI:
    try:
        if isinstance(access, KubeError):
            raise access
        return WorkloadAPI(client_for(access))
    except KubeError as e:
        # The cluster's own settings are at fault, not the cluster nor the request; only an
        # admin, who set them, sees the server's file paths they name.
        why = e.message if actor.is_admin else without_paths(e.message)
        raise Conflict(
            f"cluster {cluster.name!r} cannot be reached with its access settings: {why}; "
            "an admin fixes them with `pullkeeper cluster edit`",
            "cluster",
        ) from None


def _failed(e: KubeError, namespace: str) -> ServiceError:
    """A Kubernetes refusal as the error the caller can act on."""
    if e.status == 404:
        return NotFound(f"{e.message}; is namespace {namespace!r} really in the cluster?")
    if e.status == 422:
        return Invalid(e.message)
    if e.status == 409:
        return Conflict(e.message)
    return ClusterFailed(e.message)


def _target(
    server: Server, actor: Actor, cluster_ref: str, namespace: str
) -> tuple[Cluster, Namespace, Access | KubeError]:
    with server.reading() as session:
        cluster = clusters.get_cluster(session, actor, cluster_ref)
        ns = clusters.get_namespace(session, actor, cluster, namespace)
        access = _access(server, cluster)
        session.expunge(cluster)
        session.expunge(ns)
        return cluster, ns, access


def _matching_secrets(
    server: Server, actor: Actor, cluster: Cluster, namespace: str, images: Sequence[str]
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """The Secrets the kubelet would use for these images, in its order, each once; the
    credentials they come from; and what admission does to each image first (the rewrite to
    the default registry, and its verdict)."""
    names: list[str] = []
    used: list[dict[str, Any]] = []
    admitted: list[dict[str, Any]] = []
    excluded = server.settings.sync_excluded_namespaces
    with server.reading() as session:
        for image in images:
            found = credentials.effective(session, actor, cluster, namespace, image, excluded)
            admitted.append(
                {"image": image, "pulled": found["pulled"], "rewritten": found["rewritten"]}
                | found["admission"]
            )
            for item in found["items"]:
                if item["secret_name"] not in names:
                    names.append(item["secret_name"])
                    used.append(
                        {
                            k: item[k]
                            for k in ("id", "name", "scope", "server", "username", "secret_name")
                        }
                    )
    return names, used, admitted


def _workload_name(name: str) -> None:
    try:
        validate_subdomain(name, "name")
    except InvalidName as e:
        raise Invalid(str(e), "name") from None


def containers_of(
    name: str, image: str | None, port: int | None, containers: Sequence[Container] | None
) -> list[Container]:
    """A workload's containers as a request gives them: one image (with its port), or a list
    whose unnamed entries ("" as name) are named after the workload: NAME, NAME-1, ..."""
    if (image is None) == (containers is None):
        raise Invalid("give image, or containers, but not both", "image")
    if image is not None:
        return [Container(name, image, port)]
    if port is not None:
        raise Invalid("port goes with image; give each container its own port", "port")
    return [
        Container(c.name or (name if i == 0 else f"{name}-{i}"), c.image, c.port)
        for i, c in enumerate(containers or [])
    ]


def _validate(name: str, containers: Sequence[Container], replicas: int, one_image: bool) -> None:
    try:
        validate_label(name, "name")
    except InvalidName as e:
        raise Invalid(str(e), "name") from None
    if not containers:
        raise Invalid("a workload needs an image (or a list of containers)", "image")
    if not 0 <= replicas <= MAX_REPLICAS:
        raise Invalid(f"replicas must be between 0 and {MAX_REPLICAS}", "replicas")
    seen: set[str] = set()
    for i, c in enumerate(containers):
        where = "" if one_image else f"containers[{i}]."
        try:
            parse_normalized_named(c.image)
        except InvalidReference as e:
            raise Invalid(
                f"{c.image!r} is not a valid image reference: {e}", f"{where}image"
            ) from None
        try:
            validate_label(c.name, f"{where}name")
        except InvalidName as e:
            raise Invalid(str(e), f"{where}name") from None
        if c.name in seen:
            raise Invalid(f"two containers are named {c.name!r}", f"{where}name")
        seen.add(c.name)


def deploy(
    server: Server,
    actor: Actor,
    cluster_ref: str,
    namespace: str,
    name: str,
    containers: Sequence[Container],
    replicas: int = 1,
) -> dict[str, Any]:
    """Create Deployment NAME (labels app=NAME) with exactly the matching imagePullSecrets."""
    cluster, ns, access = _target(server, actor, cluster_ref, namespace)
    _may_use(actor, ns.project_id, "deploy workloads in it")
    _validate(name, containers, replicas, one_image=len(containers) == 1)
    images = list(dict.fromkeys(c.image for c in containers))
    secrets, used, _ = _matching_secrets(server, actor, cluster, namespace, images)
    manifest = workloads.deployment(name, namespace, containers, replicas, secrets)
    with _api(cluster, access, actor) as api:
        try:
            created = api.create_deployment(manifest)
        except KubeError as e:
            if e.status == 409:
                raise Conflict(
                    f"a Deployment named {name!r} already exists in namespace {namespace!r}; "
                    "choose another name, or `pullkeeper attach` the Secrets to it",
                    "name",
                ) from None
            raise _failed(e, namespace) from None
        missing = _missing_secrets(api, namespace, secrets)
    result = {
        "cluster": cluster.name,
        "namespace": namespace,
        "kind": "Deployment",
        "name": name,
        "uid": created["metadata"].get("uid", ""),
        "replicas": replicas,
        "images": images,
        "image_pull_secrets": secrets,
        "credentials": used,
        "missing_secrets": missing,
    }
    with server.transaction() as session:
        audit.record(
            session,
            actor,
            "workload.create",
            "workload",
            result["uid"],
            project_id=ns.project_id,
            after={
                k: result[k]
                for k in (
                    "cluster",
                    "namespace",
                    "kind",
                    "name",
                    "replicas",
                    "images",
                    "image_pull_secrets",
                )
            },
        )
    return result


def _missing_secrets(api: WorkloadAPI, namespace: str, names: Sequence[str]) -> list[str]:
    """The named Secrets not (yet) in the namespace: the sync may not have delivered them."""
    try:
        return [n for n in names if not api.has_secret(namespace, n)]
    except KubeError as e:  # only a hint: the workload exists whatever this says
        _log.warning("cannot tell whether the pull secrets are in %s: %s", namespace, e)
        return []


def status(
    server: Server,
    actor: Actor,
    cluster_ref: str,
    namespace: str,
    name: str,
    *,
    diagnose: bool = True,
) -> dict[str, Any]:
    """A Deployment's rollout, its pull events, and, when a pull failed, why."""
    _workload_name(name)
    cluster, _ns, access = _target(server, actor, cluster_ref, namespace)
    with _api(cluster, access, actor) as api:
        try:
            workload = api.get("Deployment", namespace, name)
            if workload is None:
                raise NotFound(f"no Deployment {name!r} in namespace {namespace!r}")
            labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            found = api.replicasets(namespace, labels) if labels else []
            sets = workloads.owned_replicasets(workload, found)
            pods = workloads.owned_pods(
                workload, sets, api.pods(namespace, labels) if labels else []
            )
            events = workloads.related_events(workload, sets, pods, api.events(namespace))
        except KubeError as e:
            raise _failed(e, namespace) from None
    roll = workloads.rollout(workload, pods, events)
    spec = workloads.pod_spec(workload)
    result: dict[str, Any] = {
        "cluster": cluster.name,
        "namespace": namespace,
        "kind": "Deployment",
        "name": name,
        "state": roll.state,
        "reason": roll.reason,
        "replicas": roll.replicas,
        "ready": roll.ready,
        "updated": roll.updated,
        "available": roll.available,
        "conditions": roll.conditions,
        "images": workloads.images(spec),
        "image_pull_secrets": workloads.pull_secret_names(spec),
        "pods": [_pod(p) for p in pods],
        "events": events,
        "diagnosis": [],
    }
    if diagnose and roll.state == workloads.FAILED:
        result["diagnosis"] = [
            _diagnose(server, actor, cluster.name, namespace, image) for image in roll.failed_images
        ]
    return result


def _pod(pod: dict[str, Any]) -> dict[str, Any]:
    status = pod.get("status") or {}
    containers = []
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        now = next(iter(state), "waiting")
        detail = state.get(now) or {}
        containers.append(
            {
                "name": c.get("name", ""),
                "image": c.get("image", ""),
                "ready": bool(c.get("ready")),
                "state": now,
                "reason": detail.get("reason", ""),
                "message": detail.get("message", ""),
            }
        )
    return {
        "name": pod["metadata"]["name"],
        "phase": status.get("phase", ""),
        "containers": containers,
    }


def _diagnose(
    server: Server, actor: Actor, cluster: str, namespace: str, image: str
) -> dict[str, Any]:
    """The server's pull check of an image that failed to pull, as the kubelet would try it."""
    try:
        report = checks.run(server, actor, checks.CheckRequest(image, cluster, namespace))
    except ServiceError as e:
        return {"image": image, "ok": None, "cause": e.code, "message": e.message, "check": None}
    error = report.get("error") or {}
    if report["ok"]:
        works = next(a["source"] for a in report["attempts"] if a["ok"])
        message = (
            f"pullkeeper can pull {image} with {works}; the cluster's failure lies elsewhere: "
            "is the Secret in the namespace, can the node reach the registry and trust its "
            "certificate?"
        )
        return {"image": image, "ok": True, "cause": None, "message": message, "check": report}
    cause, message = error.get("cause"), error.get("message") or "no credential works"
    furthest = _furthest(report["attempts"])
    if furthest is not None:
        cause, message = furthest["cause"], f"{furthest['source']}: {furthest['message']}"
    return {"image": image, "ok": False, "cause": cause, "message": message, "check": report}


# The causes that tell the most, in that order: an attempt that got as far as the
# repository explains more than one refused at the door.
_FURTHEST = ("not_found", "denied", "expired", "unauthorized", "no_credentials")


def _furthest(attempts: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    ranked = [a for a in attempts if a["cause"] in _FURTHEST]
    return min(ranked, key=lambda a: _FURTHEST.index(a["cause"]), default=None)


def naming_secret(
    server: Server, actor: Actor, credential_id: str, secret: str | None = None
) -> dict[str, Any]:
    """The Deployments, StatefulSets and DaemonSets, in the namespaces the credential reaches,
    whose pods name the Secret `secret` (default: the credential's own): after a rename, those
    that still name the old Secret, which the sync no longer delivers."""
    with server.reading() as session:
        cred = credentials.get(session, actor, credential_id)
        _may_use(actor, credentials.project_of(session, cred), "list its workloads")
        cluster = clusters.get_cluster(session, actor, cred.cluster_id)
        reached = set(
            credentials.reach(session, actor, cred, server.settings.sync_excluded_namespaces)
        )
        secret = secret or cred.name
        session.expunge(cluster)
    found = []
    with _api(cluster, _access(server, cluster), actor) as api:
        try:
            every = api.every_workload()
        except KubeError as e:
            raise ClusterFailed(e.message) from None
    for workload in every:
        meta = workload["metadata"]
        if meta.get("namespace") not in reached:
            continue
        if secret in workloads.pull_secret_names(workloads.pod_spec(workload)):
            found.append(
                {"namespace": meta["namespace"], "kind": workload["kind"], "name": meta["name"]}
            )
    found.sort(key=lambda w: (w["namespace"], w["kind"], w["name"]))
    return {"cluster": cluster.name, "secret": secret, "items": found}


def attach(
    server: Server, actor: Actor, cluster_ref: str, namespace: str, kind_text: str, name: str
) -> dict[str, Any]:
    """Give a workload made elsewhere the matching pull secrets it lacks, keeping every entry
    it has, in its order; no write when nothing is missing."""
    kind = workloads.kind_of(kind_text)
    if kind is None:
        raise Invalid(
            f"{kind_text!r} is not a workload kind pullkeeper attaches to: "
            "use deployment, statefulset or daemonset",
            "kind",
        )
    _workload_name(name)
    cluster, ns, access = _target(server, actor, cluster_ref, namespace)
    _may_use(actor, ns.project_id, "attach pull secrets to its workloads")
    with _api(cluster, access, actor) as api:
        for _attempt in range(3):
            try:
                workload = api.get(kind, namespace, name)
            except KubeError as e:
                raise _failed(e, namespace) from None
            if workload is None:
                raise NotFound(f"no {kind} {name!r} in namespace {namespace!r}")
            spec = workloads.pod_spec(workload)
            images = workloads.images(spec)
            had = workloads.pull_secret_names(spec)
            wanted, used, _ = _matching_secrets(server, actor, cluster, namespace, images)
            added = workloads.merge_pull_secrets(had, wanted)
            if not added:
                break
            try:
                workload = api.set_pull_secrets(
                    kind,
                    namespace,
                    name,
                    str(workload["metadata"].get("resourceVersion", "")),
                    [*had, *added],
                )
                break
            except KubeError as e:
                if e.status != 409:  # 409: changed since it was read; read it again
                    raise _failed(e, namespace) from None
        else:
            raise Conflict(f"{kind} {namespace}/{name} kept changing; try again", "name")
        missing = _missing_secrets(api, namespace, added)
    result = {
        "cluster": cluster.name,
        "namespace": namespace,
        "kind": kind,
        "name": name,
        "images": images,
        "had": had,
        "added": added,
        "image_pull_secrets": workloads.pull_secret_names(workloads.pod_spec(workload)),
        "credentials": used,
        "missing_secrets": missing,
    }
    if added:
        with server.transaction() as session:
            audit.record(
                session,
                actor,
                "workload.attach",
                "workload",
                str(workload["metadata"].get("uid", "")),
                project_id=ns.project_id,
                before={"image_pull_secrets": had},
                after={
                    "cluster": cluster.name,
                    "namespace": namespace,
                    "kind": kind,
                    "name": name,
                    "image_pull_secrets": result["image_pull_secrets"],
                },
            )
    return result


def _resolve(
    server: Server, actor: Actor, cluster_ref: str, namespace: str
) -> tuple[Cluster, str | None]:
    """The cluster and the namespace's project; each NotFound names its field, for a form."""
    with server.reading() as session:
        try:
            cluster = clusters.get_cluster(session, actor, cluster_ref)
        except NotFound as e:
            raise NotFound(e.message, "cluster") from None
        try:
            ns = clusters.get_namespace(session, actor, cluster, namespace)
        except NotFound as e:
            raise NotFound(e.message, "namespace") from None
        session.expunge(cluster)
        return cluster, ns.project_id


def plan(
    server: Server, actor: Actor, cluster_ref: str, namespace: str, images: Sequence[str]
) -> dict[str, Any]:
    """What `deploy` would attach for these images, without deploying: the same checks of the
    target, the permission and the images, each error on the field it concerns."""
    cluster, project_id = _resolve(server, actor, cluster_ref, namespace)
    _may_use(actor, project_id, "deploy workloads in it")
    names, used, admitted = _matching_secrets(server, actor, cluster, namespace, images)
    return {
        "cluster": cluster.name,
        "namespace": namespace,
        "images": list(images),
        "image_pull_secrets": names,
        "credentials": used,
        "admission": admitted,
    }


def credentials_for(
    server: Server, actor: Actor, cluster_ref: str, namespace: str, images: Sequence[str]
) -> list[dict[str, Any]]:
    """The credentials whose Secrets the kubelet would use for these images, in its order, for
    anyone who sees the namespace (a workload's page shows where its Secrets come from)."""
    cluster, _project_id = _resolve(server, actor, cluster_ref, namespace)
    return _matching_secrets(server, actor, cluster, namespace, images)[1]


def _listed_scope(
    session: Session, actor: Actor, excluded: Sequence[str], where: dict[str, str]
) -> tuple[Cluster, set[str] | None, str | None, dict[str, str]]:
    """The cluster a listing reads, the namespaces it keeps (None: all) and the Secret its
    workloads must name (a credential's), from the request's cluster, namespace, project
    or credential; and those as found, by name."""
    if where.get("credential"):
        cred = credentials.get(session, actor, where["credential"])
        cluster = clusters.get_cluster(session, actor, cred.cluster_id)
        reached = set(credentials.reach(session, actor, cred, excluded))
        return cluster, reached, cred.name, {"cluster": cluster.name, "credential": cred.name}
    if where.get("cluster"):
        cluster = clusters.get_cluster(session, actor, where["cluster"])
    else:
        visible = clusters.list_clusters(session, actor)
        if len(visible) != 1:
            raise Invalid("choose the cluster whose workloads to list", "cluster")
        cluster = visible[0]
    shown = {"cluster": cluster.name}
    if where.get("project"):
        project = clusters.get_project(session, actor, where["project"], cluster)
        names = {n["name"] for n in clusters.list_namespaces(session, actor, cluster, project)}
        return cluster, names, None, shown | {"project": project.name}
    if where.get("namespace"):
        ns = clusters.get_namespace(session, actor, cluster, where["namespace"])
        return cluster, {ns.name}, None, shown | {"namespace": ns.name}
    if actor.sees_everything:
        return cluster, None, None, shown
    return (
        cluster,
        {n["name"] for n in clusters.list_namespaces(session, actor, cluster)},
        None,
        shown,
    )


def listing(
    server: Server,
    actor: Actor,
    *,
    cluster: str = "",
    namespace: str = "",
    project: str = "",
    credential: str = "",
) -> dict[str, Any]:
    """The Deployments, StatefulSets and DaemonSets of a cluster's namespaces the actor sees
    (of one namespace, of a project's, or those naming a credential's Secret where it
    reaches), each with how its images pull on the nodes (core.workloads.pull_state)."""
    where = {"cluster": cluster, "namespace": namespace, "project": project}
    where["credential"] = credential
    with server.reading() as session:
        target, kept, secret, shown = _listed_scope(
            session, actor, server.settings.sync_excluded_namespaces, where
        )
        session.expunge(target)
    one = next(iter(kept)) if kept is not None and len(kept) == 1 else None
    items: list[dict[str, Any]] = []
    if kept is None or kept:
        with _api(target, _access(server, target), actor) as api:
            try:
                every = api.every_workload(one)
                pods, sets = api.every_pod(one)
            except KubeError as e:
                raise ClusterFailed(e.message) from None
        # Owners are found by uid within a namespace: each namespace's pods and sets once.
        pods_in: dict[str, list[dict[str, Any]]] = defaultdict(list)
        sets_in: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in pods:
            pods_in[pod["metadata"].get("namespace", "")].append(pod)
        for rs in sets:
            sets_in[rs["metadata"].get("namespace", "")].append(rs)
        for w in every:
            meta = w["metadata"]
            ns = meta.get("namespace", "")
            spec = workloads.pod_spec(w)
            names = workloads.pull_secret_names(spec)
            if (kept is not None and ns not in kept) or (secret and secret not in names):
                continue
            mine = workloads.owned_pods(w, sets_in[ns], pods_in[ns])
            pulled = workloads.pull_state(spec, mine)
            items.append(
                {
                    "namespace": ns,
                    "kind": w["kind"],
                    "name": meta["name"],
                    "images": workloads.images(spec),
                    "image_pull_secrets": names,
                    "pods": len(mine),
                    "pull_state": pulled.state,
                    "pull_reason": pulled.reason,
                }
            )
    items.sort(key=lambda i: (i["namespace"], i["kind"], i["name"]))
    return shown | {"secret": secret, "items": items}
