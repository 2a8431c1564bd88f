"""Registry policy per cluster and per project; a project's overrides its cluster's by field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.core.etag import IfMatch
from pullkeeper.core.imagepolicy import MODES
from pullkeeper.core.policy import (
    FIELDS,
    Policy,
    PolicyError,
    check_allowlist_entry,
    check_default_registry,
    policy_warnings,
)
from pullkeeper.core.serviceaccounts import ServiceAccountsError, check_selection
from pullkeeper.services import audit, clusters, versions
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, Invalid
from pullkeeper.store.models import Cluster, Project
from pullkeeper.store.models import Policy as PolicyRow
from pullkeeper.store.queries import lock_cluster


def _row(session: Session, cluster: Cluster, project: Project | None) -> PolicyRow | None:
    project_id = project.id if project else None
    return session.scalar(
        select(PolicyRow).where(
            PolicyRow.cluster_id == cluster.id,
            PolicyRow.project_id.is_(None)
            if project_id is None
            else PolicyRow.project_id == project_id,
        )
    )


def value_of(row: PolicyRow | None) -> Policy:
    """A stored policy row as the rules' value (all unset for no row)."""
    if row is None:
        return Policy()
    return Policy(
        row.default_registry,
        tuple(row.allowlist) if row.allowlist is not None else None,
        row.always_pull,
        tuple(row.service_accounts) if row.service_accounts is not None else None,
        row.require_digest,
        row.forbid_latest,
        row.mode,
    )


def as_dict(p: Policy) -> dict[str, Any]:
    return {
        "default_registry": p.default_registry,
        "allowlist": list(p.allowlist) if p.allowlist is not None else None,
        "always_pull": p.always_pull,
        "service_accounts": list(p.service_accounts) if p.service_accounts is not None else None,
        "require_digest": p.require_digest,
        "forbid_latest": p.forbid_latest,
        "mode": p.mode,
        "warnings": policy_warnings(p),
    }


def addressed(
    session: Session, actor: Actor, *, cluster: str = "", project: str = ""
) -> tuple[Cluster, Project | None]:
    """The cluster and the project whose policy a request names: a project's (with the
    cluster it is in) when a project is named, else a cluster's."""
    if project:
        p = clusters.get_project(session, actor, project)
        return clusters.get_cluster(session, actor, p.cluster_id), p
    if cluster:
        return clusters.get_cluster(session, actor, cluster), None
    raise Invalid("choose a cluster or a project first", "cluster")


def may_change(actor: Actor, project: Project | None) -> bool:
    """Admins change a cluster's policy; admins and the project's owners a project's."""
    return actor.is_admin if project is None else actor.owns(project.id)


def get(session: Session, cluster: Cluster, project: Project | None) -> Policy:
    return value_of(_row(session, cluster, project))


def _owner(cluster: Cluster, project: Project | None) -> str:
    return project.id if project else cluster.id


def _what(cluster: Cluster, project: Project | None) -> str:
    if project:
        return f"the policy of project {project.name!r}"
    return f"the policy of cluster {cluster.name!r}"


def tag(session: Session, cluster: Cluster, project: Project | None) -> str:
    """The policy's ETag (without quotes), named after its cluster or project: a policy
    never set is at version 0, and every write bumps it."""
    row = _row(session, cluster, project)
    return versions.tag(_owner(cluster, project), row.version if row else 0)


def effective(session: Session, cluster: Cluster, project: Project | None) -> Policy:
    own = get(session, cluster, project) if project else Policy()
    return own.over(get(session, cluster, None))


def put(
    session: Session,
    actor: Actor,
    cluster: Cluster,
    project: Project | None,
    values: dict[str, Any],
    *,
    if_match: IfMatch | None = None,
) -> Policy:
    """Replace the fields given; a field set to null inherits again."""
    if not may_change(actor, project):
        raise Forbidden(
            "only an admin can change a cluster's policy"
            if project is None
            else "only an admin or the project's owner can change its policy"
        )
    # A policy row is made on its first write: the cluster's row lock keeps two first writes
    # from both making one (a null project_id escapes the unique constraint on PostgreSQL).
    lock_cluster(session, cluster.id)
    row = _row(session, cluster, project)
    owner, what = _owner(cluster, project), _what(cluster, project)
    with versions.guard(session, if_match, owner, row.version if row else 0, what):
        _check(values)
        before = as_dict(value_of(row)) if row else None
        if row is None:
            row = PolicyRow(
                cluster_id=cluster.id,
                project_id=project.id if project else None,
                created_by=actor.username,
            )
            session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_by = actor.username
    value = value_of(row)
    audit.record(
        session,
        actor,
        "policy.put",
        "policy",
        row.id,
        project_id=project.id if project else None,
        before=before,
        after=as_dict(value),
    )
    return value


def _check(values: dict[str, Any]) -> None:
    """Check the fields of a policy write; normalize the lists in place."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise Invalid(f"unknown policy field {sorted(unknown)[0]!r}", sorted(unknown)[0])
    try:
        if values.get("default_registry") is not None:
            check_default_registry(values["default_registry"])
        if values.get("allowlist") is not None:
            values["allowlist"] = [check_allowlist_entry(e) for e in values["allowlist"]]
        if values.get("mode") is not None and values["mode"] not in MODES:
            raise Invalid(f"mode must be one of {', '.join(MODES)}", "mode")
        if values.get("service_accounts") is not None:
            values["service_accounts"] = list(check_selection(values["service_accounts"]))
    except PolicyError as e:
        raise Invalid(str(e), e.field) from None
    except ServiceAccountsError as e:
        raise Invalid(str(e), "service_accounts") from None
