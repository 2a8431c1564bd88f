"""Clusters, projects and the namespaces known in them."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.names import InvalidName, validate_label
from pullkeeper.services import audit, versions
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Conflict, Forbidden, Invalid, NotFound
from pullkeeper.store.models import Cluster, Credential, Namespace, Project
from pullkeeper.store.queries import lock_cluster, namespace_named

__all__ = [
    "ACCESS_MODES",
    "cluster_dict",
    "cluster_name",
    "cluster_view",
    "create_cluster",
    "create_project",
    "delete_cluster",
    "delete_namespace",
    "delete_project",
    "get_cluster",
    "get_namespace",
    "get_project",
    "list_clusters",
    "list_namespaces",
    "list_projects",
    "namespace_counts",
    "namespace_dict",
    "project_dict",
    "put_namespace",
    "tag",
    "update_cluster",
    "update_project",
]

ACCESS_MODES = ("kubeconfig", "in-cluster")


# Names a cluster's or project's page address cannot have: /clusters/new and /projects/new
# are the Add forms, which the web finds before a cluster or project by name.
_RESERVED = ("new",)


def _name(value: str, field: str, what: str = "") -> str:
    """A valid label; for a cluster or project (`what`), not a reserved one."""
    try:
        validate_label(value, field)
    except InvalidName as e:
        raise Invalid(str(e), field) from None
    if what and value in _RESERVED:
        raise Invalid(
            f"a {what} cannot be named {value!r}: /{what}s/{value} is the web's Add form; "
            "choose another name",
            field,
        )
    return value


def _admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"only an admin can {what}")


def cluster_dict(c: Cluster) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "access": c.access,
        "kubeconfig": c.kubeconfig,
        "context": c.context,
        # Only that the server holds an uploaded kubeconfig (in the store, encrypted).
        "kubeconfig_uploaded": c.kubeconfig_blob is not None,
        "created_at": c.created_at.isoformat(),
        "created_by": c.created_by,
        "updated_at": c.updated_at.isoformat(),
        "updated_by": c.updated_by,
    }


def cluster_view(c: Cluster, actor: Actor) -> dict[str, Any]:
    """cluster_dict as `actor` may see it: the server's file paths are for admins only."""
    found = cluster_dict(c)
    if not actor.is_admin and found["kubeconfig"]:
        found["kubeconfig"] = "(a file on the server)"
    return found


def project_dict(p: Project, cluster_name: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "cluster_id": p.cluster_id,
        "cluster": cluster_name,
        "description": p.description,
        "created_at": p.created_at.isoformat(),
        "created_by": p.created_by,
    }


def namespace_dict(n: Namespace, cluster_name: str, project_name: str | None) -> dict[str, Any]:
    return {
        "id": n.id,
        "name": n.name,
        "cluster_id": n.cluster_id,
        "cluster": cluster_name,
        "project_id": n.project_id,
        "project": project_name,
    }


def _visible_cluster_ids(session: Session, actor: Actor) -> set[str] | None:
    if actor.sees_everything:
        return None
    ids = session.scalars(select(Project.cluster_id).where(Project.id.in_(actor.projects)))
    return set(ids)


def get_cluster(session: Session, actor: Actor, ref: str) -> Cluster:
    cluster = session.get(Cluster, ref) or session.scalar(
        select(Cluster).where(Cluster.name == ref)
    )
    visible = _visible_cluster_ids(session, actor)
    if cluster is None or (visible is not None and cluster.id not in visible):
        raise NotFound(f"no cluster {ref!r}")
    return cluster


def list_clusters(session: Session, actor: Actor) -> list[Cluster]:
    stmt = select(Cluster).order_by(Cluster.name)
    visible = _visible_cluster_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(Cluster.id.in_(visible))
    return list(session.scalars(stmt))


def _access(access: str, kubeconfig: str, context: str) -> None:
    if access not in ACCESS_MODES:
        raise Invalid(f"access must be one of {', '.join(ACCESS_MODES)}", "access")
    if access == "in-cluster" and (kubeconfig or context):
        raise Invalid("an in-cluster cluster takes no kubeconfig or context", "kubeconfig")


def create_cluster(
    session: Session,
    actor: Actor,
    name: str,
    *,
    description: str = "",
    access: str = "kubeconfig",
    kubeconfig: str = "",
    context: str = "",
    cluster_id: str | None = None,
    sealed: dict[str, Any] | None = None,
) -> Cluster:
    """Register a cluster; an uploaded kubeconfig comes `sealed` (its encrypted columns),
    bound to the given `cluster_id`."""
    _admin(actor, "register clusters")
    _name(name, "name", "cluster")
    _access(access, kubeconfig, context)
    if session.scalar(select(Cluster.id).where(Cluster.name == name)):
        raise Conflict(f"a cluster named {name!r} already exists", "name")
    cluster = Cluster(
        **({"id": cluster_id} if cluster_id else {}),
        name=name,
        description=description,
        access=access,
        kubeconfig=kubeconfig,
        context=context,
        **(sealed or {}),
        created_by=actor.username,
        updated_by=actor.username,
    )
    session.add(cluster)
    session.flush()
    audit.record(
        session, actor, "cluster.create", "cluster", cluster.id, after=cluster_dict(cluster)
    )
    return cluster


def tag(row: Cluster | Project) -> str:
    """A cluster's or project's ETag (without quotes): changes with every write of it."""
    return versions.tag(row.id, row.version)


def update_cluster(
    session: Session,
    actor: Actor,
    cluster: Cluster,
    changes: dict[str, Any],
    *,
    if_match: IfMatch | None = None,
) -> Cluster:
    _admin(actor, "change clusters")
    before = cluster_dict(cluster)
    with versions.guard(
        session, if_match, cluster.id, cluster.version, f"cluster {cluster.name!r}"
    ):
        if "name" in changes and changes["name"] != cluster.name:
            _name(changes["name"], "name", "cluster")
            if session.scalar(select(Cluster.id).where(Cluster.name == changes["name"])):
                raise Conflict(f"a cluster named {changes['name']!r} already exists", "name")
        keys = ("access", "kubeconfig", "context")
        merged = {k: changes.get(k, getattr(cluster, k)) for k in keys}
        _access(merged["access"], merged["kubeconfig"], merged["context"])
        for key, value in changes.items():
            setattr(cluster, key, value)
        cluster.updated_by = actor.username
    audit.record(
        session,
        actor,
        "cluster.update",
        "cluster",
        cluster.id,
        before=before,
        after=cluster_dict(cluster),
    )
    return cluster


def delete_cluster(
    session: Session, actor: Actor, cluster: Cluster, *, if_match: IfMatch | None = None
) -> None:
    _admin(actor, "delete clusters")
    with versions.guard(
        session, if_match, cluster.id, cluster.version, f"cluster {cluster.name!r}"
    ):
        audit.record(
            session, actor, "cluster.delete", "cluster", cluster.id, before=cluster_dict(cluster)
        )
        session.delete(cluster)


def _project_query(actor: Actor) -> Select[Project, str]:
    stmt = select(Project, Cluster.name).join(Cluster, Cluster.id == Project.cluster_id)
    if not actor.sees_everything:
        stmt = stmt.where(Project.id.in_(actor.projects))
    return stmt


def get_project(
    session: Session, actor: Actor, ref: str, cluster: Cluster | None = None
) -> Project:
    stmt = _project_query(actor)
    if cluster is not None:
        stmt = stmt.where(Project.cluster_id == cluster.id)
    row = session.execute(stmt.where(Project.id == ref)).first()
    if row is not None:
        return row[0]
    rows = session.execute(stmt.where(Project.name == ref).order_by(Cluster.name)).all()
    if not rows:
        raise NotFound(f"no project {ref!r}")
    if len(rows) > 1:
        where = ", ".join(f"{c} ({p.id})" for p, c in rows)
        raise Conflict(
            f"project name {ref!r} exists in several clusters: {where}; give the project's id",
            "project",
        )
    return rows[0][0]


def cluster_name(session: Session, cluster_id: str) -> str:
    return session.scalar(select(Cluster.name).where(Cluster.id == cluster_id)) or ""


def list_projects(
    session: Session, actor: Actor, cluster: Cluster | None = None
) -> list[dict[str, Any]]:
    stmt = _project_query(actor).order_by(Cluster.name, Project.name)
    if cluster is not None:
        stmt = stmt.where(Project.cluster_id == cluster.id)
    return [project_dict(p, c) for p, c in session.execute(stmt)]


class ProjectChoice(NamedTuple):
    """A project as a picker offers it (attributes, not keys: templates read them often)."""

    id: str
    name: str
    cluster: str


def project_choices(session: Session, actor: Actor) -> list[ProjectChoice]:
    """The projects the actor may see, by cluster and name: what a project picker offers,
    three columns read, no objects made."""
    stmt = select(Project.id, Project.name, Cluster.name).join(
        Cluster, Cluster.id == Project.cluster_id
    )
    if not actor.sees_everything:
        stmt = stmt.where(Project.id.in_(actor.projects))
    rows = session.connection().execute(stmt.order_by(Cluster.name, Project.name))
    return [ProjectChoice(*r) for r in rows]


def create_project(
    session: Session, actor: Actor, cluster: Cluster, name: str, description: str = ""
) -> Project:
    _admin(actor, "create projects")
    _name(name, "name", "project")
    if session.scalar(
        select(Project.id).where(Project.cluster_id == cluster.id, Project.name == name)
    ):
        raise Conflict(f"cluster {cluster.name!r} already has a project {name!r}", "name")
    project = Project(
        cluster_id=cluster.id,
        name=name,
        description=description,
        created_by=actor.username,
        updated_by=actor.username,
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor,
        "project.create",
        "project",
        project.id,
        project_id=project.id,
        after=project_dict(project, cluster.name),
    )
    return project


def update_project(
    session: Session,
    actor: Actor,
    project: Project,
    changes: dict[str, Any],
    *,
    if_match: IfMatch | None = None,
) -> Project:
    if not actor.owns(project.id):
        raise Forbidden("only an admin or the project's owner can change it")
    renaming = "name" in changes and changes["name"] != project.name
    if renaming:
        _admin(actor, "rename projects")
    before = project_dict(project, cluster_name(session, project.cluster_id))
    with versions.guard(
        session, if_match, project.id, project.version, f"project {project.name!r}"
    ):
        if renaming:
            _name(changes["name"], "name", "project")
            if session.scalar(
                select(Project.id).where(
                    Project.cluster_id == project.cluster_id, Project.name == changes["name"]
                )
            ):
                raise Conflict(f"the cluster already has a project {changes['name']!r}", "name")
        for key, value in changes.items():
            setattr(project, key, value)
        project.updated_by = actor.username
    audit.record(
        session,
        actor,
        "project.update",
        "project",
        project.id,
        project_id=project.id,
        before=before,
        after=project_dict(project, before["cluster"]),
    )
    return project


def delete_project(
    session: Session, actor: Actor, project: Project, *, if_match: IfMatch | None = None
) -> None:
    _admin(actor, "delete projects")
    with versions.guard(
        session, if_match, project.id, project.version, f"project {project.name!r}"
    ):
        audit.record(
            session,
            actor,
            "project.delete",
            "project",
            project.id,
            project_id=project.id,
            before=project_dict(project, cluster_name(session, project.cluster_id)),
        )
        session.delete(project)


def get_namespace(session: Session, actor: Actor, cluster: Cluster, name: str) -> Namespace:
    ns = namespace_named(session, cluster.id, name)
    if ns is None or not actor.sees(ns.project_id):
        raise NotFound(f"no namespace {name!r} in cluster {cluster.name!r}")
    return ns


def list_namespaces(
    session: Session, actor: Actor, cluster: Cluster, project: Project | None = None
) -> list[dict[str, Any]]:
    stmt = (
        select(Namespace, Project.name)
        .outerjoin(Project, Project.id == Namespace.project_id)
        .where(Namespace.cluster_id == cluster.id)
        .order_by(Namespace.name)
    )
    if project is not None:
        stmt = stmt.where(Namespace.project_id == project.id)
    if not actor.sees_everything:
        stmt = stmt.where(Namespace.project_id.in_(actor.projects))
    return [namespace_dict(n, cluster.name, p) for n, p in session.execute(stmt)]


def namespace_counts(session: Session, project_ids: list[str]) -> dict[str, int]:
    """How many namespaces each of these projects has."""
    rows = session.execute(
        select(Namespace.project_id, func.count())
        .where(Namespace.project_id.in_(project_ids))
        .group_by(Namespace.project_id)
    )
    return {p: n for p, n in rows if p is not None}


def put_namespace(
    session: Session, actor: Actor, cluster: Cluster, name: str, project: Project | None
) -> Namespace:
    """Register a namespace, or move it into (or out of) a project."""
    _admin(actor, "register namespaces")
    _name(name, "name")
    if project is not None and project.cluster_id != cluster.id:
        raise Invalid(f"project {project.name!r} belongs to another cluster", "project")
    # Concurrent PUTs of one new namespace wait here instead of colliding.
    lock_cluster(session, cluster.id)
    ns = namespace_named(session, cluster.id, name)
    before = {"project_id": ns.project_id} if ns else None
    if ns is None:
        ns = Namespace(cluster_id=cluster.id, name=name, created_by=actor.username)
        session.add(ns)
    ns.project_id = project.id if project else None
    ns.updated_by = actor.username
    session.flush()
    audit.record(
        session,
        actor,
        "namespace.put",
        "namespace",
        ns.id,
        project_id=ns.project_id,
        before=before,
        after={"cluster": cluster.name, "name": name, "project_id": ns.project_id},
    )
    return ns


def delete_namespace(session: Session, actor: Actor, ns: Namespace) -> None:
    _admin(actor, "remove namespaces")
    held = session.scalar(
        select(func.count())
        .select_from(Credential)
        .where(
            Credential.cluster_id == ns.cluster_id,
            Credential.scope == "namespace",
            Credential.namespace == ns.name,
        )
    )
    if held:
        raise Conflict(
            f"namespace {ns.name!r} still has {held} namespace-scoped "
            "credential(s); delete them first",
            "name",
        )
    audit.record(
        session,
        actor,
        "namespace.delete",
        "namespace",
        ns.id,
        project_id=ns.project_id,
        before={"name": ns.name, "project_id": ns.project_id},
    )
    session.delete(ns)
