"""Checks run by the server with the credentials it holds; the secrets never leave it.

A check reads what it needs in one short read transaction, talks to the
registry with no transaction open, then records each tried credential's
result in a write transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from pullkeeper.core import providers, pullpolicy, realms
from pullkeeper.core.nodeconfig.route import route
from pullkeeper.core.policy import allowlist_admits
from pullkeeper.core.providers import registry_host
from pullkeeper.core.reference import Reference
from pullkeeper.registry.auth import Login
from pullkeeper.registry.ca_files import ca_file
from pullkeeper.registry.client import TLS, Registry
from pullkeeper.registry.errors import RegistryError
from pullkeeper.services import (
    clusters,
    config_files,
    credentials,
    node_profiles,
    policies,
    pull_trial,
)
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import Forbidden, Invalid
from pullkeeper.services.server import Server
from pullkeeper.store.models import (
    Cluster,
    Credential,
    CredentialCheck,
    Namespace,
    Project,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class CheckRequest:
    image: str
    cluster: str
    namespace: str
    platform: str | None = None
    pull_policy: str | None = None
    try_all: bool = False
    on_node: bool = False  # the image is already on the node
    # The labels of the node the pod would run on: the cluster's node profile for them adds
    # the node's config.json logins (after the pod's) and its mirrors to the check.
    node_labels: dict[str, str] = field(default_factory=dict)


def tls_for(server: Server) -> Callable[[str], TLS]:
    """The server's TLS view of a registry: its certs.d CA, and the insecure list."""
    certs = server.settings.data / "certs.d"
    insecure = {h.lower() for h in server.settings.insecure_registries}

    def tls(host: str) -> TLS:
        return TLS(ca_file=ca_file(certs, host), insecure=host.lower() in insecure, on_server=True)

    return tls


def may_check(actor: Actor, project_id: str | None) -> bool:
    """Whether the actor may check with the project's credentials (pull checks in its
    namespaces, logins with its credentials): admins, and the project's owners and members."""
    return actor.uses(project_id)


def _check_may_check(actor: Actor, project_id: str | None) -> None:
    if not may_check(actor, project_id):
        raise Forbidden(
            "only an admin, or an owner or member of the project, can check with its credentials"
        )


def check_source(req: CheckRequest, *, with_file: bool) -> None:
    """A pull check tries the credentials of a namespace (named with its cluster) or those
    of a credential file: one of the two, not both."""
    if with_file:
        if req.cluster or req.namespace:
            raise Invalid("give a cluster and namespace, or a config, not both", "config")
    elif not req.namespace:
        raise Invalid("write the namespace the pod runs in, or upload a file", "namespace")
    elif not req.cluster:
        raise Invalid("choose the cluster the namespace is in", "cluster")


def run(server: Server, actor: Actor, req: CheckRequest) -> dict[str, Any]:
    """The pull check of an image in a namespace, as the kubelet there would pull it: after
    admission has rewritten it to the default registry and judged it."""
    check_source(req, with_file=False)
    _validated(req.image, req.platform, req.pull_policy)
    with server.reading() as session:
        cluster = clusters.get_cluster(session, actor, req.cluster)
        found = credentials.effective(
            session,
            actor,
            cluster,
            req.namespace,
            req.image,
            server.settings.sync_excluded_namespaces,
        )
        project_id = session.scalar(
            select(Namespace.project_id).where(
                Namespace.cluster_id == cluster.id, Namespace.name == req.namespace
            )
        )
        _check_may_check(actor, project_id)
        project = session.get(Project, project_id) if project_id else None
        policy = policies.effective(session, cluster, project)
        candidates = []
        for item in found["items"]:
            row = session.get(Credential, item["id"])
            if row is None:
                continue
            password = server.vault.decrypt(row.secret_key_id, row.secret_blob, row.id)
            login = Login(row.username, password, token_hosts=tuple(row.token_hosts or ()))
            candidates.append(pull_trial.Candidate(item["name"], row.server, login, row.id))
        node = node_profiles.node_view(session, server.vault, cluster, req.node_labels)
    on_node, route = _node_candidates(node, found["pulled"], pod=len(candidates))
    admission = found["admission"]
    refused = None
    if not admission["allowed"]:
        refused = (
            "; ".join(admission["violations"])
            + f"; the admission webhook of namespace {req.namespace} would refuse the pod"
        )
    elif (
        not actor.is_admin
        and policy.allowlist is not None
        and not _admits(policy.allowlist, found["pulled"])
    ):
        # In warn or audit mode the pod runs, but for a member the server reaches only what
        # the allowlist admits: a check is no way to the rest of the network. (An admin's
        # check goes on, with the warning: the egress policy is theirs to set.)
        refused = (
            f"{found['pulled']} comes from a registry the allowlist of namespace "
            f"{req.namespace} does not admit ({', '.join(policy.allowlist) or 'none'}); in "
            f"{policy.mode or 'enforce'} mode the pod would run, but the server checks only "
            "registries the allowlist admits"
        )
    report = pull_trial.check(
        found["pulled"],
        candidates + on_node,
        tls_for(server),
        platform=req.platform,
        pull_policy=req.pull_policy,
        always_pull=bool(policy.always_pull),
        try_all=req.try_all,
        allowed=(lambda _ref: refused) if refused else None,
        on_node=req.on_node,
        egress=server.egress,
    )
    _record(
        server,
        actor,
        [(a.credential_id, a.error) for a in report.attempts if a.credential_id is not None],
        req.image,
    )
    result = report.as_dict()
    result.update(
        image=req.image,
        pulled=found["pulled"],
        rewritten=found["rewritten"],
        warnings=[] if refused else admission["violations"],
        cluster=cluster.name,
        namespace=req.namespace,
    )
    if route is not None:
        result["node_profile"] = route
    return result


def _node_candidates(
    node: node_profiles.NodeView | None, image: str, *, pod: int
) -> tuple[list[pull_trial.Candidate], dict[str, Any] | None]:
    """The node's config.json logins the kubelet tries for the image after the pod's (in its
    keyring's order), and the node's way to the image, as data; none without a profile."""
    if node is None:
        return [], None
    way = route(image, node.profile, f"node config.json (profile {node.name})")
    found = [
        pull_trial.Candidate(
            f"{m.source}: {node.credentials[m.registry][1]}",
            m.registry,
            Login(m.username, m.password),
            node.credentials[m.registry][0],
        )
        for m in way.logins
    ]
    described = {"profile": node.name, **way.as_dict()}
    described.update(
        pod_credentials=pod,
        node_credentials=len(found),
        relies_on_node=not pod and bool(found),
    )
    return found, described


def input_problems(image: str, platform: str | None, pull_policy: str | None) -> dict[str, str]:
    """What is wrong with a check's image, platform and pull policy, each field's problem
    (a form shows them all at once)."""
    problems: dict[str, str] = {}
    try:
        pull_trial.parse_image(image)
    except pull_trial.CheckInputError as e:
        problems["image"] = str(e)
    try:
        pull_trial.parse_platform(platform)
    except pull_trial.CheckInputError as e:
        problems["platform"] = str(e)
    if "image" not in problems:  # the policy's default depends on the image's tag
        try:
            pullpolicy.effective_pull_policy(image, pull_policy)
        except pullpolicy.InvalidPullPolicy as e:
            problems["pull_policy"] = str(e)
    return problems


def _validated(image: str, platform: str | None, pull_policy: str | None) -> None:
    # Bad input fails before anything is read.
    for field_name, message in input_problems(image, platform, pull_policy).items():
        raise Invalid(message, field_name)


def run_with_file(
    server: Server,
    actor: Actor,
    req: CheckRequest,
    content: bytes,
    filename: str,
) -> dict[str, Any]:
    """The pull check with a credential file instead of a namespace's credentials: a docker
    config.json, a .dockercfg or Secret manifests, as the pod's imagePullSecrets. Nothing of
    the file is stored; the report names its entries, never their secrets."""
    check_source(req, with_file=True)
    if not actor.uses_a_project:
        raise Forbidden("only an admin, or an owner or member of a project, can run pull checks")
    _validated(req.image, req.platform, req.pull_policy)
    try:
        found = config_files.resolve_content(req.image, content, filename or "the file")
    except config_files.InputError as e:
        raise Invalid(str(e), "config") from None
    report = pull_trial.check(
        req.image,
        pull_trial.candidates_from_keyring(found.matches),
        tls_for(server),
        platform=req.platform,
        pull_policy=req.pull_policy,
        try_all=req.try_all,
        allowed=_projects_allowlist(server, actor),
        on_node=req.on_node,
        egress=server.egress,
    )
    result = report.as_dict()
    result.update(file=filename, warnings=found.warnings)
    return result


def _admits(allowlist: tuple[str, ...], image: str) -> bool:
    ref = pull_trial.parse_image(image)
    return allowlist_admits(allowlist, ref.domain, ref.path)


def _projects_allowlist(server: Server, actor: Actor) -> Callable[[Reference], str | None] | None:
    """With a file there is no namespace to take the policy from: a member's check may reach
    only a registry that the allowlist of one of their projects admits."""
    if actor.is_admin:
        return None
    lists: list[tuple[str, tuple[str, ...]]] = []
    with server.reading() as session:
        for project_id in actor.projects:
            project = session.get(Project, project_id) if may_check(actor, project_id) else None
            cluster = session.get(Cluster, project.cluster_id) if project else None
            if project is None or cluster is None:
                continue
            allowlist = policies.effective(session, cluster, project).allowlist
            if allowlist is None:
                return None  # a project without an allowlist may check any registry
            lists.append((project.name, allowlist))

    def allowed(ref: Reference) -> str | None:
        if any(allowlist_admits(a, ref.domain, ref.path) for _, a in lists):
            return None
        names = ", ".join(sorted({name for name, _ in lists})) or "none"
        return (
            f"{ref.domain} is on the allowlist of none of your projects ({names}); a check "
            "may reach only a registry one of them allows (the allowlist of their policy)"
        )

    return allowed


def verify(server: Server, actor: Actor, credential_id: str) -> dict[str, Any]:
    """Log in with a stored credential as `docker login` would, and record the result."""
    with server.reading() as session:
        cred = credentials.get(session, actor, credential_id)
        _check_may_check(actor, credentials.project_of(session, cred))
        password = server.vault.decrypt(cred.secret_key_id, cred.secret_blob, cred.id)
        login = Login(cred.username, password, token_hosts=tuple(cred.token_hosts or ()))
        host = registry_host(cred.server)
    error: RegistryError | None = None
    tls = tls_for(server)(host)
    try:
        with Registry(host, login, tls, egress=server.egress) as registry:
            registry.verify_login()
    except RegistryError as e:
        error = e
    _record(server, actor, [(credential_id, error)])
    with server.reading() as session:
        return credentials.describe(session, credentials.get(session, actor, credential_id))


def verify_unsaved(
    server: Server,
    actor: Actor,
    provider: str,
    address: str | None,
    username: str,
    password: str,
    token_hosts: Sequence[str] = (),
) -> dict[str, Any]:
    """Log in with a typed credential before it is saved; nothing is stored, recorded or logged.

    The result names the registry and, when refused, the cause and message (never the secret).
    """
    if not actor.owns_a_project:
        raise Forbidden("only an admin or a project owner can test a registry login")
    try:
        address, username = providers.check(provider, address, username, password)
    except providers.ProviderError as e:
        raise Invalid(str(e), e.field) from None
    try:
        trusted = tuple(realms.check_token_host(h) for h in token_hosts)
    except realms.RealmError as e:
        raise Invalid(str(e), "token_hosts") from None
    host = registry_host(address)
    login = Login(username, password, token_hosts=trusted)
    try:
        with Registry(host, login, tls_for(server)(host), egress=server.egress) as registry:
            registry.verify_login()
    except RegistryError as e:
        return {"ok": False, "registry": host, "cause": str(e.cause), "message": e.message}
    return {"ok": True, "registry": host, "cause": None, "message": None}


# How many checks of each credential are kept: enough to see when it started failing.
KEPT_CHECKS = 20


def _record(
    server: Server,
    actor: Actor,
    results: list[tuple[str, RegistryError | None]],
    image: str | None = None,
) -> None:
    """Each tried credential's result: its last check, and one more entry of its history."""
    if not results:
        return
    now = utcnow()
    with server.transaction() as session:
        for credential_id, error in results:
            values = {
                "status": "failing" if error else "ok",
                "cause": str(error.cause) if error else None,
                "message": error.message if error else None,
            }
            session.execute(
                update(Credential)
                .where(Credential.id == credential_id)
                .values(
                    check_status=values["status"],
                    check_cause=values["cause"],
                    check_message=values["message"],
                    checked_at=now,
                    # A check is not an edit: keep updated_at off its onupdate default.
                    updated_at=Credential.updated_at,
                )
            )
            session.add(
                CredentialCheck(
                    credential_id=credential_id,
                    at=now,
                    kind="pull" if image else "login",
                    image=image,
                    actor=actor.username,
                    **values,
                )
            )
            session.flush()
            kept = (
                select(CredentialCheck.id)
                .where(CredentialCheck.credential_id == credential_id)
                .order_by(CredentialCheck.id.desc())
                .limit(KEPT_CHECKS)
            )
            session.execute(
                delete(CredentialCheck).where(
                    CredentialCheck.credential_id == credential_id,
                    CredentialCheck.id.not_in(kept.scalar_subquery()),
                )
            )


def history(server: Server, actor: Actor, credential_id: str) -> list[dict[str, Any]]:
    """A credential's last checks, newest first, for whoever may see the credential."""
    with server.reading() as session:
        cred = credentials.get(session, actor, credential_id)
        rows = session.scalars(
            select(CredentialCheck)
            .where(CredentialCheck.credential_id == cred.id)
            .order_by(CredentialCheck.id.desc())
            .limit(KEPT_CHECKS)
        )
        return [
            {
                "at": r.at.isoformat(),
                "kind": r.kind,
                "image": r.image,
                "by": r.actor,
                "status": r.status,
                "cause": r.cause,
                "message": r.message,
            }
            for r in rows
        ]
