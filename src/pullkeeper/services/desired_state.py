"""What a cluster should hold, from the store: the input of the sync and of `render`.

The store knows the active credentials (with their secrets), the projects and
the namespaces registered or discovered, with their recorded project. The
sync adds what only the cluster knows (namespaces' labels); `render` works
from the store alone, for GitOps, without a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.core import delivery, serviceaccounts
from pullkeeper.services import audit
from pullkeeper.services.actor import Actor
from pullkeeper.services.credentials import effective_rows
from pullkeeper.services.errors import Forbidden
from pullkeeper.store.models import Cluster, Credential, Namespace, Policy, Project
from pullkeeper.store.vault import Vault

__all__ = ["ClusterState", "load", "render"]


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The store's side of a cluster's desired state."""

    credentials: list[delivery.Credential]
    projects: dict[str, str]  # project id -> name
    namespaces: list[delivery.Namespace]  # as recorded, without labels
    # ServiceAccount mode: the cluster policy's selection, and each project's effective one.
    cluster_accounts: tuple[str, ...] = ()
    project_accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def accounts_for(self, project: str | None) -> tuple[str, ...]:
        if project is not None and project in self.project_accounts:
            return self.project_accounts[project]
        return self.cluster_accounts


def load(session: Session, vault: Vault, cluster: Cluster) -> ClusterState:
    projects = {
        pid: name
        for pid, name in session.execute(
            select(Project.id, Project.name).where(Project.cluster_id == cluster.id)
        )
    }
    rows = effective_rows(session, cluster.id)
    blobs = session.execute(
        select(Credential.id, Credential.secret_key_id, Credential.secret_blob).where(
            Credential.id.in_([r.id for r in rows])
        )
    )
    secrets = {cid: (key_id, blob) for cid, key_id, blob in blobs}
    creds = []
    for r in rows:
        key_id, blob = secrets[r.id]
        creds.append(
            delivery.Credential(
                id=r.id,
                name=r.name,
                scope=r.scope,
                server=r.server,
                username=r.username,
                password=vault.decrypt(key_id, blob, r.id),
                email=r.email,
                namespace=r.namespace,
                project=projects.get(r.project_id) if r.project_id else None,
                adopt=r.adopt,
            )
        )
    namespaces = [
        delivery.Namespace(name, recorded_project=projects.get(pid) if pid else None)
        for name, pid in session.execute(
            select(Namespace.name, Namespace.project_id)
            .where(Namespace.cluster_id == cluster.id)
            .order_by(Namespace.name)
        )
    ]
    own = {
        pid: tuple(accounts or ())
        for pid, accounts in session.execute(
            select(Policy.project_id, Policy.service_accounts).where(
                Policy.cluster_id == cluster.id, Policy.service_accounts.is_not(None)
            )
        )
    }
    cluster_accounts = own.pop(None, ())
    return ClusterState(
        creds,
        projects,
        namespaces,
        cluster_accounts,
        {projects[pid]: accounts for pid, accounts in own.items() if pid in projects},
    )


# --------------------------------------------------------------------------- render


def render(
    session: Session,
    actor: Actor,
    vault: Vault,
    hash_key: bytes,
    cluster: Cluster,
    *,
    namespace: Namespace | None = None,
    project: Project | None = None,
    excluded: Sequence[str] = delivery.DEFAULT_EXCLUDED,
) -> dict[str, Any]:
    """The Secrets for the cluster (or one namespace or project), as manifests to apply,
    and the ServiceAccounts the policy's ServiceAccount mode selects, listing them.

    They carry secret material: an admin for the whole cluster, a project's owner
    for its namespaces; audited with the credentials rendered, never their secrets.
    """
    project_id = project.id if project else (namespace.project_id if namespace else None)
    if not (actor.is_admin or (project_id is not None and actor.owns(project_id))):
        raise Forbidden(
            "rendering Secrets reveals their secrets: only an admin, or the owner of the "
            "project rendered (--project, or --namespace of one of its namespaces), may"
        )
    state = load(session, vault, cluster)
    wanted: Sequence[delivery.Namespace] = state.namespaces
    if namespace is not None:
        wanted = [n for n in wanted if n.name == namespace.name]
    elif project is not None:
        wanted = [n for n in wanted if n.recorded_project == project.name]
    desired, collisions = delivery.desired_state(
        state.credentials, wanted, state.projects.values(), hash_key, excluded
    )
    items = [desired[slot].manifest() for slot in sorted(desired)]
    notes = []
    for ns in wanted:
        secrets = [name for (where, name) in desired if where == ns.name]
        selection = state.accounts_for(ns.recorded_project)
        if not secrets or not selection:
            continue
        if serviceaccounts.ALL in selection:
            notes.append(
                f"{ns.name}: the policy selects every ServiceAccount; only `default` is "
                "rendered (the others exist only in the cluster, where the sync adds them)"
            )
        for account in ["default"] if serviceaccounts.ALL in selection else selection:
            items.append(serviceaccounts.account_manifest(ns.name, account, secrets))
    rendered = sorted({d.credential_id for d in desired.values()})
    audit.record(
        session,
        actor,
        "secrets.render",
        "cluster",
        cluster.id,
        project_id=project_id,
        after={
            "namespace": namespace.name if namespace else None,
            "project": project.name if project else None,
            "credentials": rendered,
            "secrets": len(items),
        },
    )
    return {
        "cluster": cluster.name,
        "namespaces": [n.name for n in wanted],
        "items": items,
        "notes": notes,
        "collisions": [
            {"namespace": c.namespace, "name": c.name, "kept": c.kept, "refused": c.refused}
            for c in collisions
        ],
    }
