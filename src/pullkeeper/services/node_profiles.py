"""A cluster's node profiles: what its nodes (those each profile's selector matches) are
configured with, managed by admins; and the profile a node gets, with its logins, read
with a node token.

A profile holds registries as a node profile file does (CA, insecurity, mirrors), the
names of the cluster's credentials of cluster scope that become the nodes' logins (a node
pulls for every namespace, so nothing narrower), and whether the cluster policy's default
registry is a mirror of Docker Hub. A node gets the profile whose selector names the most
of its labels (then the first by name); two profiles of a cluster never have the same
selector. Admins and global viewers see every profile; a project's owner sees those of
its cluster, narrowed to the registries its projects hold credentials for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.names import InvalidName, validate_label, validate_subdomain
from pullkeeper.core.nodeconfig.profile import NodeProfile as NodeProfileValue
from pullkeeper.core.nodeconfig.profile import ProfileError, parse, registry_doc
from pullkeeper.core.nodeconfig.selection import check_selector, chosen, default_registry_mirror
from pullkeeper.core.providers import registry_host
from pullkeeper.services import audit, credentials, policies, versions
from pullkeeper.services.actor import OWNER, Actor
from pullkeeper.services.errors import Conflict, Forbidden, Invalid, NotFound
from pullkeeper.services.node_credentials import node_cluster
from pullkeeper.store.models import (
    Cluster,
    Credential,
    Namespace,
    NodeProfile,
    NodeState,
    Project,
    utcnow,
)
from pullkeeper.store.vault import Vault

__all__ = [
    "STATES",
    "NodeProfileSpec",
    "NodeView",
    "as_dict",
    "check_may_change",
    "create",
    "credential_choices",
    "delete",
    "for_node",
    "get",
    "list_profiles",
    "list_states",
    "may_change",
    "node_view",
    "report",
    "tag",
    "update",
]


@dataclass(frozen=True, slots=True)
class NodeProfileSpec:
    name: str
    description: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    registries: list[Any] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)
    mirror_default_registry: bool = False


def _hosts_seen(session: Session, actor: Actor, cluster: Cluster) -> set[str] | None:
    """The registry hosts the actor sees in the cluster's profiles: None for all (admins,
    viewers), those of its projects' credentials for an owner of a project there."""
    if actor.sees_everything:
        return None
    owned = [p for p, role in actor.projects.items() if role == OWNER]
    in_cluster = list(
        session.scalars(
            select(Project.id).where(Project.cluster_id == cluster.id, Project.id.in_(owned))
        )
    )
    if not in_cluster:
        raise Forbidden(
            "only admins, and the owners of a project in the cluster, see its node profiles"
        )
    namespaces = select(Namespace.name).where(
        Namespace.cluster_id == cluster.id, Namespace.project_id.in_(in_cluster)
    )
    servers = session.scalars(
        select(Credential.server).where(
            Credential.cluster_id == cluster.id,
            or_(
                and_(Credential.scope == "project", Credential.project_id.in_(in_cluster)),
                and_(Credential.scope == "namespace", Credential.namespace.in_(namespaces)),
            ),
        )
    )
    return {registry_host(s) for s in servers}


def _node_credentials(session: Session, cluster: Cluster) -> dict[str, Any]:
    """The cluster's credentials that may go to its nodes (effective, of cluster scope), by
    name (listing rows, no secret)."""
    rows = credentials.effective_rows(session, cluster.id, Credential.scope == "cluster")
    return {r.name: r for r in rows}


def as_dict(session: Session, row: NodeProfile, hosts: set[str] | None = None) -> dict[str, Any]:
    """A profile as the API shows it; narrowed to the registries of `hosts` when given."""
    registries = [r for r in row.registries if hosts is None or r["host"] in hosts]
    names = list(row.credentials)
    if hosts is not None:
        known = _node_credentials(session, session.get_one(Cluster, row.cluster_id))
        names = [n for n in names if n in known and registry_host(known[n].server) in hosts]
    else:
        known = _node_credentials(session, session.get_one(Cluster, row.cluster_id))
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "node_selector": dict(row.node_selector),
        "registries": registries,
        "credentials": names,
        # Named, but no longer an active credential of cluster scope: no node gets them.
        "missing_credentials": [n for n in names if n not in known],
        "mirror_default_registry": row.mirror_default_registry,
        "version": row.version,
        "updated_at": row.updated_at.isoformat(),
        "updated_by": row.updated_by,
    }


def _audit_view(row: NodeProfile) -> dict[str, Any]:
    return {
        "name": row.name,
        "node_selector": dict(row.node_selector),
        "registries": [r["host"] for r in row.registries],
        "credentials": list(row.credentials),
        "mirror_default_registry": row.mirror_default_registry,
    }


def _row(session: Session, cluster: Cluster, name: str) -> NodeProfile:
    row = session.scalar(
        select(NodeProfile).where(NodeProfile.cluster_id == cluster.id, NodeProfile.name == name)
    )
    if row is None:
        raise NotFound(f"no node profile {name!r} in cluster {cluster.name!r}")
    return row


def _rows(session: Session, cluster: Cluster) -> list[NodeProfile]:
    return list(
        session.scalars(
            select(NodeProfile)
            .where(NodeProfile.cluster_id == cluster.id)
            .order_by(NodeProfile.name)
        )
    )


def list_profiles(session: Session, actor: Actor, cluster: Cluster) -> list[dict[str, Any]]:
    hosts = _hosts_seen(session, actor, cluster)
    return [as_dict(session, r, hosts) for r in _rows(session, cluster)]


def get(session: Session, actor: Actor, cluster: Cluster, name: str) -> dict[str, Any]:
    hosts = _hosts_seen(session, actor, cluster)
    return as_dict(session, _row(session, cluster, name), hosts)


def tag(session: Session, cluster: Cluster, name: str) -> str:
    row = _row(session, cluster, name)
    return versions.tag(row.id, row.version)


def may_change(actor: Actor) -> bool:
    """Admins change a cluster's node profiles; everyone else at most reads them."""
    return actor.is_admin


def check_may_change(actor: Actor) -> None:
    if not may_change(actor):
        raise Forbidden("only an admin can change a cluster's node profiles")


def credential_choices(session: Session, actor: Actor, cluster: Cluster) -> list[dict[str, str]]:
    """The credentials a profile of the cluster may name (what create and update accept),
    by name: name, server and provider, never a secret. For those who change profiles."""
    check_may_change(actor)
    known = _node_credentials(session, cluster)
    return [
        {"name": n, "server": known[n].server, "provider": known[n].provider} for n in sorted(known)
    ]


def _default_registry(session: Session, cluster: Cluster) -> str | None:
    return policies.get(session, cluster, None).default_registry


def _document(
    registries: list[dict[str, Any]], default_registry: str | None, mirror_default: bool
) -> dict[str, Any]:
    """The registries a node gets: the profile's, with the default registry first among
    Docker Hub's mirrors when the profile asks for it and the cluster's policy has one."""
    out = [dict(r) for r in registries]
    if not (mirror_default and default_registry):
        return {"registries": out}
    host = default_registry.partition("/")[0]
    plain = any(r["host"] == host and r.get("insecure") == "http" for r in out)
    mirror = default_registry_mirror(default_registry, plain_http=plain)
    given = {"url": mirror.url, "override_path": True} if mirror.override_path else mirror.url
    hub = next((r for r in out if r["host"] == "docker.io"), None)
    if hub is None:
        out.append({"host": "docker.io", "mirrors": [given]})
    elif all(_url(m) != mirror.url for m in hub.get("mirrors", [])):
        hub["mirrors"] = [given, *hub.get("mirrors", [])]
    return {"registries": out}


def _url(mirror: Any) -> str:
    return str(mirror["url"] if isinstance(mirror, dict) else mirror)


def _checked(session: Session, cluster: Cluster, spec: NodeProfileSpec) -> list[dict[str, Any]]:
    """The spec's registries, normalized; Invalid naming the field that is wrong."""
    try:
        validate_label(spec.name, "name")
    except InvalidName as e:
        raise Invalid(str(e), "name") from None
    try:
        check_selector(spec.node_selector)
        registries = [registry_doc(r) for r in parse({"registries": spec.registries}).registries]
        # What a node would get must hold together too (a default registry mirror that
        # loops back to Docker Hub).
        parse(
            _document(registries, _default_registry(session, cluster), spec.mirror_default_registry)
        )
    except ProfileError as e:
        raise Invalid(e.message, e.field) from None
    known = _node_credentials(session, cluster)
    for i, name in enumerate(spec.credentials):
        if name not in known:
            raise Invalid(
                f"{name!r} is not a credential of cluster scope in cluster {cluster.name!r}: a "
                "node pulls for every namespace, so only those go to nodes",
                f"credentials[{i}]",
            )
    if len(set(spec.credentials)) != len(spec.credentials):
        raise Invalid("a credential is named twice", "credentials")
    return registries


def _same_selector(session: Session, cluster: Cluster, spec: NodeProfileSpec) -> None:
    selector = check_selector(spec.node_selector)
    for other in _rows(session, cluster):
        if other.name != spec.name and dict(other.node_selector) == selector:
            raise Conflict(
                f"node profile {other.name!r} has this node selector already: a node would "
                "not know which to take; give one of them another selector",
                "node_selector",
            )


def _fill(row: NodeProfile, spec: NodeProfileSpec, registries: list[dict[str, Any]]) -> None:
    row.description = spec.description
    row.node_selector = check_selector(spec.node_selector)
    row.registries = registries
    row.credentials = list(spec.credentials)
    row.mirror_default_registry = spec.mirror_default_registry


def create(
    session: Session, actor: Actor, cluster: Cluster, spec: NodeProfileSpec
) -> dict[str, Any]:
    check_may_change(actor)
    registries = _checked(session, cluster, spec)
    if session.scalar(
        select(NodeProfile.id).where(
            NodeProfile.cluster_id == cluster.id, NodeProfile.name == spec.name
        )
    ):
        raise Conflict(f"cluster {cluster.name!r} has a node profile {spec.name!r} already", "name")
    _same_selector(session, cluster, spec)
    row = NodeProfile(
        cluster_id=cluster.id, name=spec.name, created_by=actor.username, updated_by=actor.username
    )
    _fill(row, spec, registries)
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "node_profile.create", "node_profile", row.id, after=_audit_view(row)
    )
    return as_dict(session, row)


def update(
    session: Session,
    actor: Actor,
    cluster: Cluster,
    name: str,
    spec: NodeProfileSpec,
    *,
    if_match: IfMatch | None = None,
) -> dict[str, Any]:
    """Replace the profile `name` with `spec` (which may rename it)."""
    check_may_change(actor)
    row = _row(session, cluster, name)
    what = f"node profile {name!r}"
    with versions.guard(session, if_match, row.id, row.version, what):
        registries = _checked(session, cluster, spec)
        if spec.name != name and session.scalar(
            select(NodeProfile.id).where(
                NodeProfile.cluster_id == cluster.id, NodeProfile.name == spec.name
            )
        ):
            raise Conflict(
                f"cluster {cluster.name!r} has a node profile {spec.name!r} already", "name"
            )
        _same_selector(session, cluster, NodeProfileSpec(name, node_selector=spec.node_selector))
        before = _audit_view(row)
        row.name = spec.name
        _fill(row, spec, registries)
        row.updated_by = actor.username
    audit.record(
        session,
        actor,
        "node_profile.update",
        "node_profile",
        row.id,
        before=before,
        after=_audit_view(row),
    )
    return as_dict(session, row)


def delete(
    session: Session,
    actor: Actor,
    cluster: Cluster,
    name: str,
    *,
    if_match: IfMatch | None = None,
) -> None:
    check_may_change(actor)
    row = _row(session, cluster, name)
    before = _audit_view(row)
    with versions.guard(session, if_match, row.id, row.version, f"node profile {name!r}"):
        session.delete(row)
    audit.record(session, actor, "node_profile.delete", "node_profile", row.id, before=before)


# --------------------------------------------------------------------------- a node's view


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _selected(
    session: Session, cluster: Cluster, labels: dict[str, str]
) -> tuple[NodeProfile | None, str | None, list[Credential]]:
    """The profile a node with `labels` gets, the default registry its Docker Hub mirror
    comes from (if it asks for one), and its credentials in the order it names them."""
    row = chosen(((r.name, r.node_selector, r) for r in _rows(session, cluster)), labels)
    default = _default_registry(session, cluster) if row and row.mirror_default_registry else None
    known = _node_credentials(session, cluster)
    names = [n for n in (row.credentials if row else []) if n in known]
    creds = {
        c.id: c
        for c in session.scalars(
            select(Credential).where(Credential.id.in_([known[n].id for n in names]))
        )
    }
    return row, default, [creds[known[n].id] for n in names]


def _logins(
    vault: Vault, wanted: list[Credential]
) -> tuple[dict[str, dict[str, str]], list[Credential]]:
    """The logins of the credentials by registry key (the first named wins a key, as in a
    config.json written by hand), and the credentials read."""
    logins: dict[str, dict[str, str]] = {}
    read = []
    for c in wanted:
        if c.server in logins:
            continue
        password = vault.decrypt(c.secret_key_id, c.secret_blob, c.id)
        logins[c.server] = {"username": c.username, "password": password}
        if c.email:
            logins[c.server]["email"] = c.email
        read.append(c)
    return logins, read


def _labels(labels: dict[str, str]) -> dict[str, str]:
    try:
        return check_selector(labels, "labels")
    except ProfileError as e:
        raise Invalid(e.message, e.field) from None


def for_node(
    session: Session,
    node: Actor,
    vault: Vault,
    cluster_ref: str,
    node_name: str,
    labels: dict[str, str],
    if_none_match: str | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """The digest of what a node with `labels` gets, and what it gets (a node profile
    document with its logins' passwords, and which profile it is); None in place of the
    document when `if_none_match` is that digest already: no password is read then."""
    cluster = node_cluster(session, node, cluster_ref)
    try:
        validate_subdomain(node_name, "node")
    except InvalidName as e:
        raise Invalid(str(e), "node") from None
    row, default, wanted = _selected(session, cluster, _labels(labels))
    digest = _digest(
        [
            row.id if row else None,
            row.version if row else 0,
            default,
            [(c.id, c.version, hashlib.sha256(c.secret_blob).hexdigest()) for c in wanted],
        ]
    )
    if if_none_match == digest:
        return digest, None
    doc = _document(
        row.registries if row else [], default, bool(row and row.mirror_default_registry)
    )
    logins, read = _logins(vault, wanted)
    for c in read:
        audit.record(
            session,
            node,
            "credential.read_secret",
            "credential",
            c.id,
            after={"cluster": cluster.name, "node": node_name, "by": "node profile"},
        )
    return digest, {
        "cluster": cluster.name,
        "node": node_name,
        "profile": row.name if row else None,
        "digest": digest,
        "document": doc | {"logins": logins},
    }


@dataclass(frozen=True, slots=True)
class NodeView:
    """What a node with some labels is configured with, for a check on the server: its
    profile (logins included) and, by registry key, the credential each login is."""

    name: str
    profile: NodeProfileValue
    credentials: dict[str, tuple[str, str]]  # registry key -> (credential id, name)


def node_view(
    session: Session, vault: Vault, cluster: Cluster, labels: dict[str, str]
) -> NodeView | None:
    """The profile a node with `labels` gets in the cluster, None when none selects it."""
    row, default, wanted = _selected(session, cluster, _labels(labels))
    if row is None:
        return None
    logins, read = _logins(vault, wanted)
    doc = _document(row.registries, default, row.mirror_default_registry) | {"logins": logins}
    return NodeView(row.name, parse(doc), {c.server: (c.id, c.name) for c in read})


# --------------------------------------------------------------------------- node states

STATES = ("applied", "drifted", "failed")
_DETAIL = 2000  # characters of a report's detail kept


def report(
    session: Session,
    node: Actor,
    cluster_ref: str,
    node_name: str,
    *,
    profile: str | None,
    digest: str,
    state: str,
    detail: str = "",
) -> None:
    """A node's agent says how its files are: applied (as its profile says), drifted
    (changed by someone else, left alone), failed (could not be fetched or written)."""
    cluster = node_cluster(session, node, cluster_ref)
    try:
        validate_subdomain(node_name, "node")
    except InvalidName as e:
        raise Invalid(str(e), "node") from None
    if state not in STATES:
        raise Invalid(f"state is one of {', '.join(STATES)}", "state")
    row = session.scalar(
        select(NodeState).where(NodeState.cluster_id == cluster.id, NodeState.node == node_name)
    )
    if row is None:
        row = NodeState(cluster_id=cluster.id, node=node_name)
        session.add(row)
    row.profile = (profile or "")[:63]
    row.digest = digest[:64]
    row.state = state
    row.detail = detail[:_DETAIL]
    row.reported_at = utcnow()


def list_states(session: Session, actor: Actor, cluster: Cluster) -> list[dict[str, Any]]:
    """Each node's last report, by node name."""
    _hosts_seen(session, actor, cluster)
    rows = session.scalars(
        select(NodeState).where(NodeState.cluster_id == cluster.id).order_by(NodeState.node)
    )
    return [
        {
            "node": r.node,
            "profile": r.profile or None,
            "state": r.state,
            "detail": r.detail,
            "digest": r.digest,
            "reported_at": r.reported_at.isoformat(),
        }
        for r in rows
    ]
