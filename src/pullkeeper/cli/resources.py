"""`pullkeeper cluster|project|namespace|policy`: the server's clusters and projects.

Every command here calls the management server (see `pullkeeper login`).
"""

from __future__ import annotations

from typing import Any

import click

from pullkeeper.cli import editor
from pullkeeper.cli.access import token_state
from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.remote import Remote, seg
from pullkeeper.cli.render import details, emit, output_option, rows_table, when
from pullkeeper.cli.session import with_api
from pullkeeper.core.policy import FIELDS


def _short(value: str | None, width: int = 40) -> str:
    line = (value or "").splitlines()[0] if value else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def _by(at: str | None, who: str | None) -> str:
    return f"{when(at)} by {who}" if who else when(at)


# --------------------------------------------------------------------------- clusters


@click.group()
def cluster() -> None:
    """Clusters the server manages credentials for."""


def _kubeconfig_word(c: dict[str, Any]) -> str:
    """A cluster's kubeconfig path, or that an uploaded one is kept (never its contents)."""
    return "(uploaded, kept encrypted)" if c.get("kubeconfig_uploaded") else str(c["kubeconfig"])


def _cluster_details(c: dict[str, Any]) -> str:
    return details(
        [
            ("name", c["name"]),
            ("id", c["id"]),
            ("description", c["description"]),
            ("access", c["access"]),
            ("kubeconfig", _kubeconfig_word(c)),
            ("context", c["context"]),
            ("created", _by(c["created_at"], c.get("created_by"))),
            ("updated", _by(c["updated_at"], c.get("updated_by"))),
        ]
    )


_access = click.Choice(["kubeconfig", "in-cluster"])


@cluster.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the cluster is.")
@click.option(
    "--access",
    type=_access,
    default="kubeconfig",
    show_default=True,
    help="How the server reaches the cluster.",
)
@click.option("--kubeconfig", default="", metavar="PATH", help="Kubeconfig file on the server.")
@click.option("--context", default="", help="Context in the kubeconfig.")
@output_option
@with_api
def cluster_create(
    api: Remote,
    name: str,
    description: str,
    access: str,
    kubeconfig: str,
    context: str,
    output: str,
) -> None:
    """Register a cluster (admins only)."""
    body = {
        "name": name,
        "description": description,
        "access": access,
        "kubeconfig": kubeconfig,
        "context": context,
    }
    c = api.post("/clusters", body)
    if not emit(c, output):
        click.echo(f"cluster {c['name']} created (id {c['id']})")


@cluster.command("list")
@output_option
@with_api
def cluster_list(api: Remote, output: str) -> None:
    """The clusters you can see."""
    result = api.get("/clusters")
    if emit(result, output):
        return
    rows = [
        [c["name"], c["access"], _kubeconfig_word(c), c["context"], _short(c["description"])]
        for c in result["items"]
    ]
    click.echo(
        rows_table(["NAME", "ACCESS", "KUBECONFIG", "CONTEXT", "DESCRIPTION"], rows, "No clusters.")
    )


@cluster.command("show")
@click.argument("name")
@output_option
@with_api
def cluster_show(api: Remote, name: str, output: str) -> None:
    """One cluster, by name or id."""
    c = api.get(f"/clusters/{seg(name)}")
    if not emit(c, output):
        click.echo(_cluster_details(c))


@cluster.command("edit")
@click.argument("name")
@click.option("--name", "new_name", help="A new name.")
@click.option("--description", help="A new description.")
@click.option(
    "--access",
    type=_access,
    help="How the server reaches the cluster; in-cluster clears the kubeconfig and context.",
)
@click.option("--kubeconfig", metavar="PATH", help="Kubeconfig file on the server.")
@click.option("--context", help="Context in the kubeconfig.")
@output_option
@with_api
def cluster_edit(
    api: Remote,
    name: str,
    new_name: str | None,
    description: str | None,
    access: str | None,
    kubeconfig: str | None,
    context: str | None,
    output: str,
) -> None:
    """Change a cluster (admins only).

    Without options the cluster opens as YAML in $VISUAL or $EDITOR, and is written back
    only if nobody changed it meanwhile.
    """
    changes = {
        k: v
        for k, v in {
            "name": new_name,
            "description": description,
            "access": access,
            "kubeconfig": kubeconfig,
            "context": context,
        }.items()
        if v is not None
    }
    path = f"/clusters/{seg(name)}"
    if not changes:
        editor.require("--name, --description, --access, --kubeconfig or --context")
        fields = ("name", "description", "access", "kubeconfig", "context")
        edited = editor.run(api, path, f"cluster {name}", ["cluster", "edit", name], fields)
        if edited is not None and not emit(edited, output):
            click.echo(f"cluster {edited['name']} updated")
        return
    if access == "in-cluster":
        changes.setdefault("kubeconfig", "")
        changes.setdefault("context", "")
    c = api.patch(path, changes)
    if not emit(c, output):
        click.echo(f"cluster {c['name']} updated")


@cluster.command("delete")
@click.argument("name")
@with_api
def cluster_delete(api: Remote, name: str) -> None:
    """Delete a cluster with its projects, namespaces, credentials and policies (admins only)."""
    api.delete(f"/clusters/{seg(name)}")
    click.echo(f"cluster {name} deleted")


@cluster.command("kubeconfig")
@click.argument("name")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--context", default="", help="One of its contexts (default: its current-context).")
@with_api
def cluster_kubeconfig(api: Remote, name: str, file: Any, context: str) -> None:
    """Send the server a kubeconfig to reach a cluster with (admins only): it keeps the
    context's cluster and user, encrypted in its store, replacing the cluster's access. A
    file in which any user runs a command (exec) is refused. FILE "-" reads standard input."""
    found = api.put(
        f"/clusters/{seg(name)}/kubeconfig", {"content": file.read(), "context": context}
    )
    click.echo(f"cluster {name} now uses the uploaded kubeconfig, context {found['context']}")


@cluster.command("test")
@click.argument("name")
@output_option
@with_api
def cluster_test(api: Remote, name: str, output: str) -> None:
    """Test the server's connection to a cluster (admins only): the API server's version and
    the permissions pullkeeper needs there that its account lacks. Exit status 1 when it
    cannot connect or something is missing."""
    found = api.post(f"/clusters/{seg(name)}/test", {})
    if not emit(found, output):
        if not found["reachable"]:
            click.echo(f"cluster {name}: cannot connect: {found['error']}")
        else:
            click.echo(f"cluster {name}: connected to Kubernetes {found['version']}")
            if found["missing"]:
                click.echo(f"missing permissions ({len(found['missing'])}):")
                for permission in found["missing"]:
                    click.echo(f"  {permission}")
                click.echo(
                    "grant them, for example with the ClusterRole that "
                    "`pullkeeper webhook manifests` prints"
                )
            else:
                click.echo("every permission pullkeeper needs is granted")
    if not found["reachable"] or found["missing"]:
        raise SystemExit(1)


@cluster.group("node-token")
def node_token() -> None:
    """Node tokens: what a cluster's nodes read their credentials with (admins only).

    The kubelet's credential provider presents one (`pullkeeper kubelet-credential-provider
    --server URL --token-file FILE --cluster NAME`); it reads the cluster's credentials of
    cluster scope and can do nothing else.
    """


@node_token.command("create")
@click.argument("cluster_name", metavar="CLUSTER")
@click.option("--name", default="", help="What the token is for (a node pool, say).")
@click.option(
    "--expires-in-days", type=click.IntRange(1, 3650), help="Lifetime [default: no expiry]."
)
@output_option
@with_api
def node_token_create(
    api: Remote, cluster_name: str, name: str, expires_in_days: int | None, output: str
) -> None:
    """Issue a node token for a cluster. It is shown once, now: put it in the nodes' token file."""
    issued = api.post(
        f"/clusters/{seg(cluster_name)}/node-tokens",
        {"name": name, "expires_in_days": expires_in_days},
    )
    if emit(issued, output):
        return
    click.echo(
        details(
            [
                ("token", issued["token"]),
                ("id", issued["id"]),
                ("cluster", issued["cluster"]),
                ("expires", when(issued["expires_at"]) if issued["expires_at"] else "never"),
            ]
        )
    )
    click.echo("This is the only time the token is shown; store it now.", err=True)


@node_token.command("list")
@click.argument("cluster_name", metavar="CLUSTER")
@output_option
@with_api
def node_token_list(api: Remote, cluster_name: str, output: str) -> None:
    """A cluster's node tokens (their values are never shown again)."""
    result = api.get(f"/clusters/{seg(cluster_name)}/node-tokens")
    if emit(result, output):
        return
    rows = [
        [
            t["id"],
            t["name"],
            when(t["created_at"]),
            t["created_by"] or "",
            when(t["expires_at"]) if t["expires_at"] else "never",
            token_state(t),
        ]
        for t in result["items"]
    ]
    headers = ["ID", "NAME", "CREATED", "BY", "EXPIRES", "STATE"]
    click.echo(rows_table(headers, rows, "No node tokens."))


@node_token.command("revoke")
@click.argument("cluster_name", metavar="CLUSTER")
@click.argument("token_id", metavar="ID")
@with_api
def node_token_revoke(api: Remote, cluster_name: str, token_id: str) -> None:
    """Revoke a node token now: the nodes using it get no credentials from the next pull on
    that the kubelet has not cached."""
    api.delete(f"/clusters/{seg(cluster_name)}/node-tokens/{seg(token_id)}")
    click.echo(f"node token {token_id} of cluster {cluster_name} revoked")


# --------------------------------------------------------------------------- projects

_in_cluster = click.option(
    "--cluster",
    "in_cluster",
    metavar="CLUSTER",
    help="The project's cluster, when the name is used in several.",
)


def project_ref(api: Remote, project: str, cluster: str | None) -> str:
    """A project's path segment: as given, or its id when the cluster is named too."""
    if not cluster:
        return seg(project)
    for p in api.get("/projects", {"cluster": cluster})["items"]:
        if project in (p["id"], p["name"]):
            return seg(p["id"])
    raise CLIError(f"no project {project!r} in cluster {cluster!r}")


@click.group()
def project() -> None:
    """Projects: groups of namespaces in a cluster, with members and their roles."""


def _project_details(p: dict[str, Any]) -> str:
    return details(
        [
            ("name", p["name"]),
            ("id", p["id"]),
            ("cluster", p["cluster"]),
            ("description", p["description"]),
            ("created", _by(p["created_at"], p.get("created_by"))),
        ]
    )


@project.command("create")
@click.argument("name")
@click.option("--cluster", required=True, help="The cluster it belongs to (name or id).")
@click.option("--description", default="", help="What the project is.")
@output_option
@with_api
def project_create(api: Remote, name: str, cluster: str, description: str, output: str) -> None:
    """Create a project in a cluster (admins only)."""
    p = api.post("/projects", {"name": name, "cluster": cluster, "description": description})
    if not emit(p, output):
        click.echo(f"project {p['name']} created in cluster {p['cluster']} (id {p['id']})")


@project.command("list")
@click.option("--cluster", help="Only this cluster's projects.")
@output_option
@with_api
def project_list(api: Remote, cluster: str | None, output: str) -> None:
    """The projects you can see."""
    result = api.get("/projects", {"cluster": cluster})
    if emit(result, output):
        return
    rows = [
        [p["cluster"], p["name"], _short(p["description"]), p["created_by"], p["id"]]
        for p in result["items"]
    ]
    click.echo(
        rows_table(["CLUSTER", "NAME", "DESCRIPTION", "CREATED BY", "ID"], rows, "No projects.")
    )


@project.command("show")
@click.argument("name")
@_in_cluster
@output_option
@with_api
def project_show(api: Remote, name: str, in_cluster: str | None, output: str) -> None:
    """One project, by name or id."""
    p = api.get(f"/projects/{project_ref(api, name, in_cluster)}")
    if not emit(p, output):
        click.echo(_project_details(p))


@project.command("edit")
@click.argument("name")
@_in_cluster
@click.option("--name", "new_name", help="A new name (admins only).")
@click.option("--description", help="A new description.")
@output_option
@with_api
def project_edit(
    api: Remote,
    name: str,
    in_cluster: str | None,
    new_name: str | None,
    description: str | None,
    output: str,
) -> None:
    """Change a project (admins and the project's owners).

    Without options the project opens as YAML in $VISUAL or $EDITOR, and is written back
    only if nobody changed it meanwhile.
    """
    given = {"name": new_name, "description": description}
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        editor.require("--name or --description")
    path = f"/projects/{project_ref(api, name, in_cluster)}"
    if not changes:
        command = ["project", "edit", name, *(["--cluster", in_cluster] if in_cluster else [])]
        edited = editor.run(api, path, f"project {name}", command, ("name", "description"))
        if edited is not None and not emit(edited, output):
            click.echo(f"project {edited['name']} updated")
        return
    p = api.patch(path, changes)
    if not emit(p, output):
        click.echo(f"project {p['name']} updated")


@project.command("delete")
@click.argument("name")
@_in_cluster
@with_api
def project_delete(api: Remote, name: str, in_cluster: str | None) -> None:
    """Delete a project with its project-scoped credentials (admins only)."""
    api.delete(f"/projects/{project_ref(api, name, in_cluster)}")
    click.echo(f"project {name} deleted")


@project.command("members")
@click.argument("name")
@_in_cluster
@output_option
@with_api
def project_members(api: Remote, name: str, in_cluster: str | None, output: str) -> None:
    """The users with a role in a project."""
    result = api.get(f"/projects/{project_ref(api, name, in_cluster)}/members")
    if emit(result, output):
        return
    rows = [
        [m["user"], m["role"] + (" (disabled)" if m.get("disabled") else "")]
        for m in result["items"]
    ]
    click.echo(rows_table(["USER", "ROLE"], rows, "No members."))


@project.group("member")
def member() -> None:
    """Give a user a role in a project, or take it away."""


_member_project = click.option(
    "-p", "--project", "project_name", required=True, help="The project (name or id)."
)


@member.command("set")
@click.argument("user")
@click.argument("role", type=click.Choice(["owner", "member", "viewer"]))
@_member_project
@_in_cluster
@output_option
@with_api
def member_set(
    api: Remote, user: str, role: str, project_name: str, in_cluster: str | None, output: str
) -> None:
    """Give USER the ROLE in a project (admins and the project's owners).

    owner: manages the project's credentials, members and policy, and reads
    their secrets; member: sees its credentials; viewer: the same, read-only.
    """
    ref = project_ref(api, project_name, in_cluster)
    result = api.put(f"/projects/{ref}/members/{seg(user)}", {"role": role})
    if not emit(result, output):
        click.echo(f"{result['user']} is now {result['role']} of project {project_name}")


@member.command("remove")
@click.argument("user")
@_member_project
@_in_cluster
@with_api
def member_remove(api: Remote, user: str, project_name: str, in_cluster: str | None) -> None:
    """Take USER's role in a project away."""
    ref = project_ref(api, project_name, in_cluster)
    api.delete(f"/projects/{ref}/members/{seg(user)}")
    click.echo(f"{user} is no longer a member of project {project_name}")


# --------------------------------------------------------------------------- namespaces


@click.group()
def namespace() -> None:
    """Namespaces known in a cluster, and the project each belongs to."""


@namespace.command("put")
@click.argument("name")
@click.option("--cluster", required=True, help="The cluster (name or id).")
@click.option(
    "--project",
    help="The project it belongs to; without it the namespace belongs to none.",
)
@output_option
@with_api
def namespace_put(api: Remote, name: str, cluster: str, project: str | None, output: str) -> None:
    """Register a namespace, or move it into or out of a project (admins only)."""
    ns = api.put(f"/clusters/{seg(cluster)}/namespaces/{seg(name)}", {"project": project})
    if not emit(ns, output):
        where = f"project {ns['project']}" if ns["project"] else "no project"
        click.echo(f"namespace {ns['name']} in cluster {ns['cluster']}: {where}")


@namespace.command("list")
@click.option("--cluster", required=True, help="The cluster (name or id).")
@click.option("--project", help="Only this project's namespaces.")
@output_option
@with_api
def namespace_list(api: Remote, cluster: str, project: str | None, output: str) -> None:
    """The namespaces you can see in a cluster."""
    result = api.get(f"/clusters/{seg(cluster)}/namespaces", {"project": project})
    if emit(result, output):
        return
    rows = [[n["name"], n["project"]] for n in result["items"]]
    click.echo(rows_table(["NAMESPACE", "PROJECT"], rows, "No namespaces."))


@namespace.command("delete")
@click.argument("name")
@click.option("--cluster", required=True, help="The cluster (name or id).")
@with_api
def namespace_delete(api: Remote, name: str, cluster: str) -> None:
    """Forget a namespace (admins only)."""
    api.delete(f"/clusters/{seg(cluster)}/namespaces/{seg(name)}")
    click.echo(f"namespace {name} removed from cluster {cluster}")


# --------------------------------------------------------------------------- policy

_FIELDS = {
    "default-registry": "default_registry",
    "default_registry": "default_registry",
    "allowlist": "allowlist",
    "allow": "allowlist",
    "always-pull": "always_pull",
    "always_pull": "always_pull",
    "service-accounts": "service_accounts",
    "service_accounts": "service_accounts",
    "require-digest": "require_digest",
    "forbid-latest": "forbid_latest",
    "mode": "mode",
}


@click.group()
def policy() -> None:
    """Registry policy of a cluster or a project: default registry, allowlist, always-pull,
    ServiceAccount mode.

    A project's fields override its cluster's; an unset field inherits.
    """


def _target(api: Remote, cluster: str | None, project: str | None) -> tuple[str, str]:
    """The policy's path and a description of it."""
    if project:
        return f"/projects/{project_ref(api, project, cluster)}/policy", f"project {project}"
    if cluster:
        return f"/clusters/{seg(cluster)}/policy", f"cluster {cluster}"
    raise CLIError("give --cluster C for a cluster's policy, or --project P for a project's")


_target_options = [
    click.option("--cluster", help="The cluster (name or id); with --project, the project's."),
    click.option("--project", help="The project (name or id)."),
]


def _yes_no(value: bool | None, unset: str) -> str:
    return unset if value is None else ("yes" if value else "no")


def _policy_text(p: dict[str, Any], what: str, unset: str) -> str:
    allowlist = p["allowlist"]
    if allowlist is None:
        allowed = unset
    elif not allowlist:
        allowed = "(empty: nothing allowed)"
    else:
        allowed = ", ".join(allowlist)
    always = p["always_pull"]
    accounts = p.get("service_accounts")
    if accounts is None:
        to_accounts = unset
    elif not accounts:
        to_accounts = "(none: off)"
    else:
        to_accounts = "every one" if accounts == ["*"] else ", ".join(accounts)
    return f"policy of {what}\n" + details(
        [
            ("default registry", p["default_registry"] or unset),
            ("allowlist", allowed),
            ("always pull", unset if always is None else ("yes" if always else "no")),
            ("service accounts", to_accounts),
            ("require digest", _yes_no(p.get("require_digest"), unset)),
            ("forbid latest", _yes_no(p.get("forbid_latest"), unset)),
            ("mode", p.get("mode") or unset),
        ]
    )


@policy.command("show")
@_target_options[0]
@_target_options[1]
@click.option(
    "--effective",
    is_flag=True,
    help="A project's policy merged over its cluster's: what applies.",
)
@output_option
@with_api
def policy_show(
    api: Remote, cluster: str | None, project: str | None, effective: bool, output: str
) -> None:
    """Show a cluster's or a project's policy."""
    path, what = _target(api, cluster, project)
    p = api.get(path, {"effective": "true"} if effective and project else None)
    if emit(p, output):
        return
    if effective or not project:
        click.echo(_policy_text(p, what + (" (effective)" if project else ""), "(none)"))
    else:
        click.echo(_policy_text(p, what, "(inherits the cluster's)"))
    for w in p.get("warnings") or []:
        warn(w)


@policy.command("set")
@_target_options[0]
@_target_options[1]
@click.option(
    "--default-registry",
    metavar="REGISTRY",
    help="Where images without a registry are pulled from (host[:port][/path]).",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="REGISTRY",
    help="An allowed registry (host[:port], *.example.com or host/path); repeat for several. "
    "Replaces the whole allowlist.",
)
@click.option(
    "--always-pull/--no-always-pull",
    default=None,
    help="Force imagePullPolicy: Always.",
)
@click.option(
    "--service-accounts",
    metavar="NAMES",
    help="ServiceAccount mode: add the delivered Secrets to these ServiceAccounts' "
    "imagePullSecrets (comma-separated names, '*' for all, 'none' to turn it off).",
)
@click.option(
    "--require-digest/--no-require-digest",
    default=None,
    help="Refuse images without @sha256:... (admission).",
)
@click.option(
    "--forbid-latest/--no-forbid-latest",
    default=None,
    help="Refuse :latest and images with neither tag nor digest (admission).",
)
@click.option(
    "--mode",
    type=click.Choice(["enforce", "warn", "audit"]),
    help="What admission does with a violation: deny it, warn, or only record it.",
)
@click.option(
    "--unset",
    "unset",
    multiple=True,
    type=click.Choice(
        sorted(
            {
                "default-registry",
                "allowlist",
                "always-pull",
                "service-accounts",
                "require-digest",
                "forbid-latest",
                "mode",
            }
        )
    ),
    help="Make a field unset again, so it inherits; repeat for several.",
)
@output_option
@with_api
def policy_set(
    api: Remote,
    cluster: str | None,
    project: str | None,
    default_registry: str | None,
    allow: tuple[str, ...],
    always_pull: bool | None,
    service_accounts: str | None,
    require_digest: bool | None,
    forbid_latest: bool | None,
    mode: str | None,
    unset: tuple[str, ...],
    output: str,
) -> None:
    """Change fields of a policy; the fields not given stay as they are.

    A cluster's policy is for admins; a project's for admins and its owners.
    """
    body: dict[str, Any] = {}
    if default_registry is not None:
        body["default_registry"] = default_registry
    if allow:
        body["allowlist"] = list(allow)
    if always_pull is not None:
        body["always_pull"] = always_pull
    if service_accounts is not None:
        names = [n.strip() for n in service_accounts.split(",") if n.strip()]
        body["service_accounts"] = [] if names == ["none"] else names
    for field, value in (
        ("require_digest", require_digest),
        ("forbid_latest", forbid_latest),
        ("mode", mode),
    ):
        if value is not None:
            body[field] = value
    for name in unset:
        field = _FIELDS[name]
        if field in body:
            raise CLIError(f"{name} is both set and unset")
        body[field] = None
    if not body:
        raise CLIError(
            "nothing to change: give --default-registry, --allow, --always-pull/"
            "--no-always-pull, --service-accounts, --require-digest, --forbid-latest, --mode "
            "or --unset"
        )
    path, what = _target(api, cluster, project)
    p = api.put(path, body)
    if emit(p, output):
        return
    click.echo(_policy_text(p, what, "(inherits the cluster's)" if project else "(none)"))
    for w in p.get("warnings") or []:
        warn(w)


@policy.command("edit")
@_target_options[0]
@_target_options[1]
@output_option
@with_api
def policy_edit(api: Remote, cluster: str | None, project: str | None, output: str) -> None:
    """Edit a policy as YAML in $VISUAL or $EDITOR; it is written back only if nobody
    changed it meanwhile.

    A cluster's policy is for admins; a project's for admins and its owners.
    """
    editor.require(
        "",
        "policy edit opens an editor: set EDITOR (or run it in a terminal), "
        "or change fields with `pullkeeper policy set`",
    )
    path, what = _target(api, cluster, project)
    command = ["policy", "edit"]
    command += ["--cluster", cluster] if cluster else []
    command += ["--project", project] if project else []
    note = "null: the field is unset" + (", so the cluster's applies." if project else ".")
    edited = editor.run(
        api, path, f"the policy of {what}", command, FIELDS, method="PUT", note=note
    )
    if edited is None or emit(edited, output):
        return
    click.echo(_policy_text(edited, what, "(inherits the cluster's)" if project else "(none)"))
    for w in edited.get("warnings") or []:
        warn(w)
