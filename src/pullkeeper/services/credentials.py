"""Registry credentials: create, edit, (de)activate, delete, list, and what applies where.

Rules from the seeds: a credential's address never changes; editing it means
typing the secret again; one active credential per address and scope, the
newest superseding the older; a name unique among every credential that
would land in the same namespace, since it becomes the Secret's name there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from pullkeeper.core import dockerconfig, providers, realms
from pullkeeper.core.cloud import CloudLogin
from pullkeeper.core.delivery import DEFAULT_EXCLUDED, Collision
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.etag import IfMatch
from pullkeeper.core.go.url import URLError
from pullkeeper.core.keyring import Keyring, byte_order, normalize_key
from pullkeeper.core.names import InvalidName, validate_label, validate_subdomain
from pullkeeper.core.reference import InvalidReference, parse_normalized_named
from pullkeeper.services import (
    audit,
    cloud_tokens,
    clusters,
    credential_sorts,
    paging,
    policies,
    preview,
    versions,
)
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Conflict, Forbidden, Invalid, NotFound
from pullkeeper.store.models import Cluster, Credential, Namespace, Project, utcnow
from pullkeeper.store.queries import lock_cluster, namespace_named
from pullkeeper.store.vault import Vault

__all__ = [
    "SCOPES",
    "STATES",
    "STATE_FILTERS",
    "CredentialSpec",
    "Filters",
    "Scope",
    "check_may_create",
    "count_by_state",
    "create",
    "delete",
    "describe",
    "effective",
    "effective_rows",
    "find_scope",
    "get",
    "list_page",
    "may_manage",
    "project_of",
    "reach",
    "resolve_scope",
    "secret_config",
    "set_state",
    "tag",
    "update",
]

SCOPES = ("namespace", "project", "cluster")
STATES = ("active", "inactive")
# What a listing filters on: a stored state, or how an active one fares in its slot.
STATE_FILTERS = (*STATES, "effective", "superseded")
# Secrets go into a pod's imagePullSecrets namespace first, then project, then cluster.
_SCOPE_ORDER = {"namespace": 0, "project": 1, "cluster": 2}


@dataclass(frozen=True, slots=True)
class Scope:
    kind: str
    cluster: Cluster
    project: Project | None = None
    namespace: str | None = None


def _address_key(server: str) -> str:
    try:
        return normalize_key(server)
    except URLError:
        return server


def _slot_of(
    cluster_id: str, scope: str, project_id: str | None, namespace: str | None, address_key: str
) -> str:
    """The value shared by credentials that supersede one another (same scope, same address).

    Ids and namespace names hold no "/", so the address key, last, keeps it unambiguous.
    """
    return f"{cluster_id}/{scope}/{project_id or ''}/{namespace or ''}/{address_key}"


def _newest_first(c: type[Credential]) -> tuple[Any, ...]:
    # Of a slot's active credentials, the newest supersedes the others.
    return (c.seq.desc(), c.id.desc())


def _newest(c: type[Credential] = Credential) -> Any:
    """The newest active credential of each row's slot: a window over the rows the statement
    selects, so right only where those are active and hold every active peer of each (every
    active credential of some slots)."""
    return func.first_value(c.id).over(partition_by=c.slot, order_by=_newest_first(c))


_peer, _shared_peer = aliased(Credential), aliased(Credential)
# Only a slot with two active credentials or more has one superseded: ranking just those
# slots' credentials, once per statement (not once per row), finds every superseded one.
_SHARED = (
    select(_shared_peer.slot)
    .where(_shared_peer.state == "active")
    .group_by(_shared_peer.slot)
    .having(func.count() > 1)
)
_RANKED = (
    select(
        _peer.id,
        func.row_number()
        .over(partition_by=_peer.slot, order_by=_newest_first(_peer))
        .label("rank"),
    )
    .where(_peer.state == "active", _peer.slot.in_(_SHARED))
    .subquery()
)
_SUPERSEDED = select(_RANKED.c.id).where(_RANKED.c.rank > 1)

# Every column but the secrets' (the password's, a cloud identity's): listings never load them.
_COLUMNS = (
    *(
        c
        for c in Credential.__table__.c
        if not c.key.startswith("secret_") and c.key not in ("identity_key_id", "identity_blob")
    ),
    Cluster.name.label("cluster"),
    Project.name.label("project"),
)
_LISTING = (
    select(*_COLUMNS)
    .join(Cluster, Cluster.id == Credential.cluster_id)
    .outerjoin(Project, Project.id == Credential.project_id)
)
_ACTIVE = _LISTING.where(Credential.state == "active")


def _newest_ids(rows: Iterable[Mapping[Any, Any]]) -> set[str]:
    """The newest credential of each slot among active rows that hold every active peer of
    theirs (a whole cluster, a scope, what reaches a namespace). Found here, not by a window
    in the statement: SQLite would then read the rows in slot order, through every active
    credential, instead of finding the few that match through the scope index."""
    newest: dict[str, tuple[int, str]] = {}
    for r in rows:
        rank, slot = (r["seq"], r["id"]), r["slot"]
        if slot not in newest or rank > newest[slot]:
            newest[slot] = rank
    return {credential_id for _, credential_id in newest.values()}


def _as_dict(row: dict[str, Any], newest: str | None) -> dict[str, Any]:
    """A credential's metadata from a _LISTING row (as a dict: a Row's attributes are slow to
    read) and its slot's newest active credential; the secret is never part of it."""
    active = row["state"] == "active"
    superseded_by = newest if active and newest != row["id"] else None
    checked_at = row["checked_at"]
    return {
        "id": row["id"],
        "name": row["name"],
        "cluster_id": row["cluster_id"],
        "cluster": row["cluster"],
        "scope": row["scope"],
        "project_id": row["project_id"],
        "project": row["project"],
        "namespace": row["namespace"],
        "provider": row["provider"],
        "server": row["server"],
        "username": row["username"],
        "email": row["email"],
        "description": row["description"],
        "state": row["state"],
        "adopt": row["adopt"],
        "token_hosts": list(row["token_hosts"] or ()),
        "superseded_by": superseded_by,
        "effective": active and superseded_by is None,
        "created_at": row["created_at"].isoformat(),
        "created_by": row["created_by"],
        "updated_at": row["updated_at"].isoformat(),
        "updated_by": row["updated_by"],
        "last_check": None
        if row["check_status"] is None
        else {
            "status": row["check_status"],
            "cause": row["check_cause"],
            "message": row["check_message"],
            "at": checked_at.isoformat() if checked_at else None,
        },
        "identity": cloud_tokens.describe(row, utcnow()) if row["identity_kind"] else None,
    }


# The newest active credential of each of some slots, found in one statement.
_NEWEST_OF_SLOTS = (
    select(Credential.slot, _newest())
    .where(Credential.state == "active", Credential.slot.in_(bindparam("slots", expanding=True)))
    .distinct()
)


def _rows(session: Session, stmt: Select[Any]) -> list[dict[str, Any]]:
    """A statement's rows as dicts, through Core: the ORM's result machinery buys nothing for
    plain columns, and a Row's attributes are slow to read."""
    session.flush()  # Core reads, unlike the ORM's, do not flush pending writes themselves
    result = session.connection().execute(stmt)
    keys = list(result.keys())
    return [dict(zip(keys, r, strict=True)) for r in result]


def _described(session: Session, stmt: Select[Any]) -> list[dict[str, Any]]:
    """The _LISTING statement's rows as metadata: two statements, whatever the row count."""
    rows = _rows(session, stmt)
    slots = sorted({r["slot"] for r in rows if r["state"] == "active"})
    newest: dict[str, str] = {}
    if slots:
        found = session.connection().execute(_NEWEST_OF_SLOTS, {"slots": slots})
        newest = {slot: first for slot, first in found}
    return [_as_dict(r, newest.get(r["slot"])) for r in rows]


def describe(session: Session, cred: Credential) -> dict[str, Any]:
    (described,) = _described(session, _LISTING.where(Credential.id == cred.id))
    return described


def _visibility(actor: Actor) -> ColumnElement[bool] | None:
    """SQL for the credentials an actor may know exist; None when all."""
    if actor.sees_everything:
        return None
    projects = list(actor.projects)
    if not projects:
        return false()
    in_projects = (
        select(Namespace.id)
        .where(
            Namespace.cluster_id == Credential.cluster_id,
            Namespace.name == Credential.namespace,
            Namespace.project_id.in_(projects),
        )
        .exists()
    )
    # Cluster-wide credentials reach the actor's namespaces, so they see them.
    their_clusters = select(Project.cluster_id).where(Project.id.in_(projects))
    return or_(
        and_(Credential.scope == "project", Credential.project_id.in_(projects)),
        and_(Credential.scope == "namespace", in_projects),
        and_(Credential.scope == "cluster", Credential.cluster_id.in_(their_clusters)),
    )


def project_of(session: Session, c: Credential) -> str | None:
    if c.scope == "project":
        return c.project_id
    if c.scope == "namespace":
        return session.scalar(
            select(Namespace.project_id).where(
                Namespace.cluster_id == c.cluster_id, Namespace.name == c.namespace
            )
        )
    return None


def get(session: Session, actor: Actor, credential_id: str) -> Credential:
    stmt = select(Credential).where(Credential.id == credential_id)
    visible = _visibility(actor)
    if visible is not None:
        stmt = stmt.where(visible)
    cred = session.scalar(stmt)
    if cred is None:
        raise NotFound(f"no credential {credential_id!r}")
    return cred


def _manages(actor: Actor, scope_kind: str, project_id: str | None) -> bool:
    # Cluster-wide credentials reach every project's namespaces: no project owner's alone.
    return actor.is_admin or (scope_kind != "cluster" and actor.owns(project_id))


def _can_manage(actor: Actor, scope_kind: str, project_id: str | None) -> None:
    if not _manages(actor, scope_kind, project_id):
        raise Forbidden("only an admin or the owner of the credential's project can do this")


def may_manage(session: Session, actor: Actor, cred: Credential) -> bool:
    """Whether the actor may edit, (de)activate and delete the credential: admins, and the
    owners of its project."""
    return _manages(actor, cred.scope, project_of(session, cred))


def reach(
    session: Session,
    actor: Actor,
    cred: Credential,
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
) -> list[str]:
    """The namespaces pullkeeper knows, of those the actor sees, whose pods get the credential's
    Secret: its namespace, its project's, or (cluster-wide) all but the excluded ones."""
    cluster = clusters.get_cluster(session, actor, cred.cluster_id)
    if cred.scope == "namespace":
        return [cred.namespace] if cred.namespace else []
    if cred.scope == "project":
        project = clusters.get_project(session, actor, cred.project_id or "", cluster)
        return [n["name"] for n in clusters.list_namespaces(session, actor, cluster, project)]
    every = clusters.list_namespaces(session, actor, cluster)
    return [n["name"] for n in every if n["name"] not in excluded]


def resolve_scope(
    session: Session,
    actor: Actor,
    kind: str,
    cluster: Cluster,
    project: Project | None,
    namespace: str | None,
) -> Scope:
    if kind not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}", "scope")
    if kind == "project":
        if project is None:
            raise Invalid("a project-scoped credential needs a project", "project")
        if project.cluster_id != cluster.id:
            raise Invalid(f"project {project.name!r} is not in cluster {cluster.name!r}", "project")
        return Scope(kind, cluster, project)
    if kind == "namespace":
        if not namespace:
            raise Invalid("a namespace-scoped credential needs a namespace", "namespace")
        try:
            validate_label(namespace, "namespace")
        except InvalidName as e:
            raise Invalid(str(e), "namespace") from None
        ns = namespace_named(session, cluster.id, namespace)
        # A namespace of a project the actor cannot see does not exist for them.
        if ns is None or not actor.sees(ns.project_id):
            raise Invalid(
                f"namespace {namespace!r} is not known in cluster {cluster.name!r}: an admin "
                "puts it in a project first (`pullkeeper namespace put`, or on the project's "
                "page), even before the cluster has it",
                "namespace",
            )
        owner_project = session.get(Project, ns.project_id) if ns.project_id else None
        return Scope(kind, cluster, owner_project, namespace)
    return Scope(kind, cluster)


def _overlapping(session: Session, scope: Scope) -> ColumnElement[bool]:
    """Credentials whose Secrets would share a namespace with this scope's."""
    c = Credential
    same_cluster = c.cluster_id == scope.cluster.id
    if scope.kind == "cluster":
        return same_cluster
    project_id = scope.project.id if scope.project else None
    if scope.kind == "project":
        member_ns = select(Namespace.name).where(
            Namespace.cluster_id == scope.cluster.id, Namespace.project_id == project_id
        )
        return and_(
            same_cluster,
            or_(
                c.scope == "cluster",
                and_(c.scope == "project", c.project_id == project_id),
                and_(c.scope == "namespace", c.namespace.in_(member_ns)),
            ),
        )
    ors = [c.scope == "cluster", and_(c.scope == "namespace", c.namespace == scope.namespace)]
    if project_id:
        ors.append(and_(c.scope == "project", c.project_id == project_id))
    return and_(same_cluster, or_(*ors))


def _check_name(session: Session, name: str, scope: Scope, exclude: str | None = None) -> None:
    try:
        validate_subdomain(name, "name")
    except InvalidName as e:
        raise Invalid(str(e), "name") from None
    stmt = select(Credential.id).where(Credential.name == name, _overlapping(session, scope))
    if exclude:
        stmt = stmt.where(Credential.id != exclude)
    if session.scalar(stmt.limit(1)):
        raise Conflict(
            f"a credential named {name!r} already lands in a namespace this one reaches; "
            "names must be unique there, as they become the Secret's name",
            "name",
        )


def _provider_check(
    provider: str, server: str | None, username: str, password: str
) -> tuple[str, str]:
    try:
        return providers.check(provider, server, username, password)
    except providers.ProviderError as e:
        raise Invalid(str(e), e.field) from None


def _address(provider: str, server: str | None) -> str:
    try:
        return providers.address(provider, server)
    except providers.ProviderError as e:
        raise Invalid(str(e), e.field) from None


def _snapshot(session: Session, c: Credential) -> dict[str, Any]:
    # Supersession is derived from other credentials, not part of this one's record; a
    # token's schedule is bookkeeping, as a check's result is.
    snapshot = describe(session, c)
    del snapshot["superseded_by"], snapshot["effective"], snapshot["last_check"]
    if snapshot["identity"] is not None:
        del snapshot["identity"]["token"]
    return snapshot


@dataclass(frozen=True, slots=True)
class CredentialSpec:
    """What a new credential is: its name, where its Secret goes, its registry and login."""

    name: str
    scope: Scope
    provider: str
    server: str | None  # None: the provider's own address
    username: str
    password: str = field(default="", repr=False)  # none with a cloud identity
    email: str = ""
    description: str = ""
    active: bool = True
    adopt: bool = False  # take over a same-named Secret pullkeeper did not create
    token_hosts: tuple[str, ...] = ()
    cloud: CloudLogin | None = None  # a cloud identity, exchanged once already


def find_scope(
    session: Session,
    actor: Actor,
    kind: str,
    cluster: str,
    project: str | None = None,
    namespace: str | None = None,
) -> Scope:
    """A scope as a request names it: the cluster, and the project if any, by name or id."""
    if not cluster:
        raise Invalid("choose the cluster the credential is for", "cluster")
    c = clusters.get_cluster(session, actor, cluster)
    p = clusters.get_project(session, actor, project, c) if project else None
    return resolve_scope(session, actor, kind, c, p, namespace)


def check_may_create(actor: Actor, scope: Scope) -> None:
    """Forbidden unless the actor may create a credential in the scope."""
    _can_manage(actor, scope.kind, scope.project.id if scope.project else None)


def create(
    session: Session,
    actor: Actor,
    vault: Vault,
    spec: CredentialSpec,
) -> Credential:
    scope = spec.scope
    project_id = scope.project.id if scope.project else None
    _can_manage(actor, scope.kind, project_id)
    if spec.cloud is not None:
        if spec.password:
            raise Invalid(
                "a credential with a cloud identity takes no password: its tokens are made "
                "from the identity",
                "password",
            )
        server, username = _address(spec.provider, spec.server), spec.cloud.token.username
    else:
        server, username = _provider_check(spec.provider, spec.server, spec.username, spec.password)
    hosts = _token_hosts(spec.token_hosts)
    lock_cluster(session, scope.cluster.id)
    _check_name(session, spec.name, scope)
    seq = (session.scalar(select(func.max(Credential.seq))) or 0) + 1
    own_project = scope.project.id if scope.kind == "project" and scope.project else None
    address_key = _address_key(server)
    cred = Credential(
        name=spec.name,
        cluster_id=scope.cluster.id,
        scope=scope.kind,
        project_id=own_project,
        namespace=scope.namespace,
        provider=spec.provider,
        server=server,
        address_key=address_key,
        slot=_slot_of(scope.cluster.id, scope.kind, own_project, scope.namespace, address_key),
        username=username,
        email=spec.email,
        description=spec.description,
        state="active" if spec.active else "inactive",
        adopt=spec.adopt,
        token_hosts=hosts,
        created_by=actor.username,
        updated_by=actor.username,
        seq=seq,
        secret_key_id="",
        secret_blob=b"",
    )
    session.add(cred)
    session.flush()
    if spec.cloud is not None:
        cloud_tokens.stored(session, vault, cred, spec.cloud)
    else:
        cred.secret_key_id, cred.secret_blob = vault.encrypt(session, spec.password, cred.id)
    audit.record(
        session,
        actor,
        "credential.create",
        "credential",
        cred.id,
        project_id=project_id,
        after=_snapshot(session, cred),
    )
    return cred


_EDITABLE = ("name", "username", "email", "description", "adopt", "token_hosts")


def _token_hosts(values: Sequence[str]) -> list[str]:
    try:
        return list(dict.fromkeys(realms.check_token_host(v) for v in values))
    except realms.RealmError as e:
        raise Invalid(str(e), "token_hosts") from None


def tag(cred: Credential) -> str:
    """The credential's ETag (without quotes): changes with every write of it."""
    return versions.tag(cred.id, cred.version)


def update(
    session: Session,
    actor: Actor,
    vault: Vault,
    cred: Credential,
    changes: dict[str, Any],
    *,
    if_match: IfMatch | None = None,
) -> Credential:
    project_id = project_of(session, cred)
    _can_manage(actor, cred.scope, project_id)
    with versions.guard(session, if_match, cred.id, cred.version, f"credential {cred.name!r}"):
        before = _change(session, vault, cred, project_id, changes)
        cred.updated_by = actor.username
    after = _snapshot(session, cred)
    if changes.get("password") or changes.get("cloud"):
        after["secret"] = "changed"  # noqa: S105 - a marker, never the value
    audit.record(
        session,
        actor,
        "credential.update",
        "credential",
        cred.id,
        project_id=project_id,
        before=before,
        after=after,
    )
    return cred


def _change(
    session: Session,
    vault: Vault,
    cred: Credential,
    project_id: str | None,
    changes: dict[str, Any],
) -> dict[str, Any]:
    """Check and make an edit's changes; the credential's record before them."""
    if "server" in changes and changes["server"] != cred.server:
        raise Invalid(
            "a credential's address cannot change; create a new credential for the new address",
            "server",
        )
    for fixed in ("scope", "cluster", "project", "namespace", "provider"):
        if fixed in changes:
            raise Invalid(f"{fixed} cannot change after creation", fixed)
    password = changes.get("password")
    cloud: CloudLogin | None = changes.get("cloud")
    if cloud is not None or cred.identity_kind:
        _check_cloud_change(cred, changes)
    touches_login = any(k in changes for k in ("username", "email"))
    if touches_login and not password and cloud is None and not cred.identity_kind:
        raise Invalid(
            "editing a credential's login needs its password or token again (it is never shown)",
            "password",
        )
    if "token_hosts" in changes:
        changes["token_hosts"] = _token_hosts(changes["token_hosts"] or ())
    before = _snapshot(session, cred)
    if password:
        _, username = _provider_check(
            cred.provider, cred.server, changes.get("username", cred.username), password
        )
        changes["username"] = username
        cred.secret_key_id, cred.secret_blob = vault.encrypt(session, password, cred.id)
    if cloud is not None:
        cloud_tokens.stored(session, vault, cred, cloud)
    if "name" in changes and changes["name"] != cred.name:
        cluster = session.get(Cluster, cred.cluster_id)
        if cluster is None:
            raise NotFound(f"no cluster {cred.cluster_id!r}")
        project = session.get(Project, project_id) if project_id else None
        lock_cluster(session, cluster.id)
        _check_name(
            session,
            changes["name"],
            Scope(cred.scope, cluster, project, cred.namespace),
            exclude=cred.id,
        )
    for key in _EDITABLE:
        if key in changes:
            setattr(cred, key, changes[key])
    return before


def _check_cloud_change(cred: Credential, changes: dict[str, Any]) -> None:
    """An edit of a credential that logs in with a cloud identity, or is given one: its
    tokens make its login, so no password or user name is given with it."""
    if changes.get("password"):
        raise Invalid(
            "this credential logs in with a cloud identity: give the identity again to change "
            "it, or create a credential with a password",
            "password",
        )
    if "username" in changes and changes["username"] != cred.username:
        raise Invalid(
            "the user name of a credential with a cloud identity is its tokens' "
            f"({cred.username}): it cannot be set",
            "username",
        )
    changes.pop("username", None)


def set_state(
    session: Session,
    actor: Actor,
    cred: Credential,
    state: str,
    *,
    if_match: IfMatch | None = None,
) -> Credential:
    project_id = project_of(session, cred)
    _can_manage(actor, cred.scope, project_id)
    with versions.guard(session, if_match, cred.id, cred.version, f"credential {cred.name!r}"):
        if cred.state == state:
            return cred
        before = {"state": cred.state}
        cred.state = state
        cred.updated_by = actor.username
    action = "credential.activate" if state == "active" else "credential.deactivate"
    audit.record(
        session,
        actor,
        action,
        "credential",
        cred.id,
        project_id=project_id,
        before=before,
        after={"state": state},
    )
    return cred


def delete(
    session: Session, actor: Actor, cred: Credential, *, if_match: IfMatch | None = None
) -> None:
    project_id = project_of(session, cred)
    _can_manage(actor, cred.scope, project_id)
    with versions.guard(session, if_match, cred.id, cred.version, f"credential {cred.name!r}"):
        audit.record(
            session,
            actor,
            "credential.delete",
            "credential",
            cred.id,
            project_id=project_id,
            before=_snapshot(session, cred),
        )
        session.delete(cred)


def secret_config(session: Session, actor: Actor, vault: Vault, cred: Credential) -> bytes:
    """The rendered .dockerconfigjson; project owners and admins only, and audited."""
    project_id = project_of(session, cred)
    if not actor.owns(project_id):
        raise Forbidden(
            "only an admin or the owner of the credential's project may read its secret"
        )
    password = vault.decrypt(cred.secret_key_id, cred.secret_blob, cred.id)
    audit.record(
        session, actor, "credential.read_secret", "credential", cred.id, project_id=project_id
    )
    return dockerconfig.encode_config_json(
        {cred.server: AuthEntry(cred.username, password, cred.email)}
    )


@dataclass(frozen=True, slots=True)
class Filters:
    """What a listing is narrowed to, as a request gives it (cluster and project by name or
    id); None filters nothing."""

    cluster: str | None = None
    project: str | None = None
    namespace: str | None = None
    provider: str | None = None
    state: str | None = None
    q: str | None = None


def _covering(
    cluster_id: str, namespace: str, project_id: str | None, *, cluster_wide: bool = True
) -> ColumnElement[bool]:
    """The credentials that reach a namespace of a cluster (in project_id, if any); those of
    the whole cluster only when cluster_wide.

    Each scope spelled out with the scope index's leading columns (a namespace's credentials
    have no project), so the store reads only the matching entries: one cluster test around
    an OR of scopes reads every credential of the cluster."""
    in_cluster = Credential.cluster_id == cluster_id
    ors = [
        and_(
            in_cluster,
            Credential.scope == "namespace",
            Credential.project_id.is_(None),
            Credential.namespace == namespace,
        )
    ]
    if cluster_wide:
        ors.append(and_(in_cluster, Credential.scope == "cluster"))
    if project_id:
        ors.append(
            and_(in_cluster, Credential.scope == "project", Credential.project_id == project_id)
        )
    return or_(*ors)


def _filtered(
    session: Session,
    actor: Actor,
    f: Filters,
    cluster: Cluster | None,
    project: Project | None,
    stmt: Select[Any],
) -> Select[Any]:
    """The statement narrowed to what the actor sees and the filters let through (the
    filters' cluster and project found already)."""
    visible = _visibility(actor)
    if visible is not None:
        stmt = stmt.where(visible)
    if cluster is not None:
        stmt = stmt.where(Credential.cluster_id == cluster.id)
    if project is not None:
        member_ns = select(Namespace.name).where(Namespace.project_id == project.id)
        in_cluster = Credential.cluster_id == project.cluster_id
        # Spelled out per scope so the (cluster, scope, project, namespace) index serves it.
        stmt = stmt.where(
            or_(
                and_(
                    in_cluster, Credential.scope == "project", Credential.project_id == project.id
                ),
                and_(
                    in_cluster, Credential.scope == "namespace", Credential.namespace.in_(member_ns)
                ),
            )
        )
    if f.namespace is not None:
        if cluster is None:
            raise Invalid("filtering by namespace needs a cluster", "cluster")
        ns_project = session.scalar(
            select(Namespace.project_id).where(
                Namespace.cluster_id == cluster.id, Namespace.name == f.namespace
            )
        )
        stmt = stmt.where(_covering(cluster.id, f.namespace, ns_project))
    if f.provider:
        stmt = stmt.where(Credential.provider == f.provider)
    if f.state:
        if f.state not in STATE_FILTERS:
            raise Invalid(f"state must be one of {', '.join(STATE_FILTERS)}", "state")
        if f.state in STATES:
            stmt = stmt.where(Credential.state == f.state)
        else:
            loses = Credential.id.in_(_SUPERSEDED)
            stmt = stmt.where(
                Credential.state == "active", ~loses if f.state == "effective" else loses
            )
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Credential.name.ilike(f"%{escaped}%", escape="\\"))
    return stmt


_KEY = (str, str)  # the cursor's key: the last row's sort value (a time as text) and id


def list_page(
    session: Session,
    actor: Actor,
    f: Filters,
    limit: int,
    offset: int = 0,
    *,
    cursor: str | None = None,
    sort: str | None = None,
) -> paging.Page:
    """A page of the credentials the actor sees through the filters, in the sort's order
    (credential_sorts: by name unless asked otherwise), then by id: from the cursor, when
    given (keyset: as cheap deep down as on top), else from the offset."""
    order = credential_sorts.parse(sort)
    at = paging.start(cursor, offset, _KEY)
    if at is not None:
        at = paging.Cursor(order.column_key(at.key), at.before)
    c = clusters.get_cluster(session, actor, f.cluster) if f.cluster else None
    p = clusters.get_project(session, actor, f.project, c) if f.project else None
    counted = _filtered(session, actor, f, c, p, select(func.count()).select_from(Credential))
    total = session.connection().scalar(counted) or 0
    stmt = paging.seek(
        _filtered(session, actor, f, c, p, _LISTING),
        order.order,
        at,
        limit,
        descending=order.descending,
    )
    items, after, before = paging.page_of(
        _described(session, stmt if at else stmt.offset(offset)),
        at,
        limit,
        0 if at else offset,
        order.key,
    )
    return paging.Page(items, total, after, before)


def effective(
    session: Session,
    actor: Actor,
    cluster: Cluster,
    namespace: str,
    image: str | None = None,
    excluded: Sequence[str] = DEFAULT_EXCLUDED,
) -> dict[str, Any]:
    """The credentials that apply in a namespace, in the order the kubelet would try them.

    Without an image: every effective credential, ordered as the kubelet orders
    keyring keys (reverse byte order of the normalized address, then Secret
    order: namespace, project, cluster scope, by name). With an image: only
    those the kubelet would try for it, in its exact order, for the image as it
    is pulled: admission rewrites an unqualified image to the default registry
    before anything is matched, and judges the result. A credential whose name
    a narrower scope's takes in this namespace is left out as the sync leaves it
    out (a conflict), and cluster-wide ones do not reach an excluded namespace.
    """
    ns = clusters.get_namespace(session, actor, cluster, namespace)
    # Cluster-wide credentials do not reach an excluded namespace.
    covering = _covering(
        cluster.id, namespace, ns.project_id, cluster_wide=namespace not in excluded
    )
    # Every peer of these is among them (same scope, same namespace reach).
    # Active ones picked here: with the state in the statement, SQLite reads through the
    # state index instead of the scope index's few entries.
    rows = [r for r in _rows(session, _LISTING.where(covering)) if r["state"] == "active"]
    newest = _newest_ids(rows)
    live, conflicts = _named_once(r for r in rows if r["id"] in newest)
    result: dict[str, Any] = {"cluster": cluster.name, "namespace": namespace, "image": image}
    if image:
        project = session.get(Project, ns.project_id) if ns.project_id else None
        verdict = preview.preview(image, policies.effective(session, cluster, project))
        try:
            repository = parse_normalized_named(verdict.pulled).name
        except InvalidReference as e:
            raise Invalid(f"{image!r} is not a valid image reference: {e}", "image") from None
        keyring = Keyring()
        for r in live:
            keyring.add([(r["server"], AuthEntry(r["username"], "", r["email"]))], r["id"])
        by_id = {r["id"]: r for r in live}
        ordered = [by_id[m.source] for m in keyring.lookup(repository)]
        result.update(
            pulled=verdict.pulled,
            rewritten=verdict.rewritten,
            admission={
                "allowed": verdict.allowed,
                "mode": verdict.mode,
                "violations": list(verdict.violations),
            },
        )
    else:
        # Reverse byte order of the addresses, longer first on ties; the sort is stable,
        # so equal addresses keep their Secret order.
        ordered = sorted(live, key=lambda r: byte_order(r["address_key"]), reverse=True)
    result["items"] = [_as_dict(r, r["id"]) | {"secret_name": r["name"]} for r in ordered]
    result["conflicts"] = conflicts
    return result


def _named_once(
    rows: Iterable[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One credential per Secret name, in Secret order; those a narrower scope's name
    shadows, as the sync reports them (core.delivery.desired_state: scope, then id)."""
    kept: dict[str, dict[str, Any]] = {}
    conflicts: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: (_SCOPE_ORDER[r["scope"]], r["id"])):
        name = r["name"]
        if name in kept:
            reason = Collision("", name, kept[name]["id"], r["id"]).reason
            conflicts.append(
                {"id": r["id"], "name": name, "scope": r["scope"], "kept": kept[name]["id"]}
                | {"reason": reason}
            )
        else:
            kept[name] = r
    live = sorted(kept.values(), key=lambda r: (_SCOPE_ORDER[r["scope"]], r["name"]))
    return live, conflicts


def effective_rows(session: Session, cluster_id: str, *where: ColumnElement[bool]) -> list[Any]:
    """Every active credential of a cluster (of those `where` narrows it to: one scope at
    least, as a slot never spans two) that no newer one supersedes (listing rows)."""
    rows = session.execute(_ACTIVE.where(Credential.cluster_id == cluster_id, *where)).all()
    newest = _newest_ids(r._mapping for r in rows)
    return [r for r in rows if r.id in newest]


def count_by_state(session: Session) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for state, n in session.execute(
        select(Credential.state, func.count()).group_by(Credential.state)
    ):
        counts[state] = n
    return dict(counts)
