"""`pullkeeper credential`: registry credentials kept by the server.

A password or token is read only from standard input (--password-stdin) or a
hidden prompt, never from a flag, and never printed: the server never returns
it, except `credential config`, which prints the rendered .dockerconfigjson.
An ECR, GCR or ACR credential may log in with a cloud identity instead
(cli/cloud_identity.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli import editor
from pullkeeper.cli.cloud_identity import (
    identity_details,
    identity_from,
    identity_options,
    token_column,
)
from pullkeeper.cli.common import CLIError, cursor_options, warn
from pullkeeper.cli.remote import Remote, RemoteError, seg
from pullkeeper.cli.render import details, emit, more_footer, output_option, rows_table, when
from pullkeeper.cli.session import prompt_secret, read_stdin_secret, with_api

_ID = re.compile(r"[0-9a-f]{32}")
_PROVIDERS = "dockerhub, quay, ghcr, gitlab, harbor, artifactory, ecr, gcr, acr, ibm, ocir, custom"


def credential_id(api: Remote, ref: str) -> str:
    """The id of the credential REF names: an id as it is, or a name that only one has."""
    if _ID.fullmatch(ref):
        return ref
    page = api.get("/credentials", {"q": ref, "limit": 500})
    matches = [c for c in page["items"] if c["name"] == ref]
    if not matches:
        raise CLIError(f"no credential {ref!r}")
    if len(matches) > 1:
        where = ", ".join(f"{c['id']} ({c['cluster']}, {_scope(c)})" for c in matches)
        raise CLIError(f"{len(matches)} credentials are named {ref!r}: {where}; give the id")
    return str(matches[0]["id"])


def _scope(c: dict[str, Any]) -> str:
    if c["scope"] == "namespace":
        return f"namespace {c['namespace']}"
    if c["scope"] == "project":
        return f"project {c['project']}"
    return "cluster"


def _state(c: dict[str, Any]) -> str:
    if c["state"] == "active" and c.get("superseded_by"):
        return "superseded"
    return str(c["state"])


def _details(c: dict[str, Any]) -> str:
    state = c["state"]
    if c.get("superseded_by"):
        state += f", superseded by {c['superseded_by']} (newer, same registry and scope)"
    return details(
        [
            ("name", c["name"]),
            ("id", c["id"]),
            ("cluster", c["cluster"]),
            ("scope", _scope(c)),
            ("provider", c["provider"]),
            ("registry", c["server"]),
            ("username", c["username"]),
            ("email", c["email"]),
            ("description", c["description"]),
            ("token hosts", ", ".join(c.get("token_hosts") or ()) or "-"),
            *identity_details(c),
            ("state", state),
            ("effective", c["effective"]),
            ("last check", _last_check(c)),
            ("created", f"{when(c['created_at'])} by {c['created_by']}"),
            ("updated", f"{when(c['updated_at'])} by {c['updated_by']}"),
        ]
    )


def _last_check(c: dict[str, Any]) -> str:
    check = c.get("last_check")
    if not check:
        return "never checked"
    if check["status"] == "ok":
        return f"ok, {when(check['at'])}"
    return f"failing ({check['cause']}), {when(check['at'])}: {check['message']}"


def _password(password_stdin: bool, *, confirm: bool) -> str:
    if password_stdin:
        return read_stdin_secret("password")
    return prompt_secret("password", confirm=confirm)


@click.group()
def credential() -> None:
    """Registry credentials: create, list, edit, (de)activate, and what applies where."""


@credential.command("create")
@click.argument("name")
@click.option("--cluster", required=True, help="The cluster (name or id).")
@click.option(
    "--scope",
    type=click.Choice(["namespace", "project", "cluster"]),
    required=True,
    help="Where the credential lands: one namespace, every namespace of a project, or all.",
)
@click.option("--project", help="The project, for --scope project.")
@click.option("-n", "--namespace", help="The namespace, for --scope namespace.")
@click.option("--provider", required=True, help=f"The registry's provider: {_PROVIDERS}.")
@click.option(
    "--registry",
    metavar="ADDRESS",
    help="The registry address (host[:port]); providers with a fixed one need none.",
)
@click.option("--username", default="", help="User name at the registry.")
@click.option("--password-stdin", is_flag=True, help="Read the password or token from stdin.")
@click.option("--email", default="", help="Email (optional).")
@click.option("--description", default="", help="What the credential is for.")
@click.option("--inactive", is_flag=True, help="Create it inactive (not deployed).")
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over a same-named Secret pullkeeper did not create (else it is a conflict).",
)
@click.option(
    "--token-host",
    "token_hosts",
    multiple=True,
    help="A token server on another host the login may be sent to (host[:port] or *.domain; "
    "repeat for more). The registry's own host and the well-known ones need none.",
)
@identity_options
@output_option
@with_api
def credential_create(
    api: Remote,
    name: str,
    cluster: str,
    scope: str,
    project: str | None,
    namespace: str | None,
    provider: str,
    registry: str | None,
    username: str,
    password_stdin: bool,
    email: str,
    description: str,
    inactive: bool,
    adopt: bool,
    token_hosts: tuple[str, ...],
    output: str,
    **identity_options_given: Any,
) -> None:
    """Create a credential NAME (it becomes the Secret's name in each namespace).

    The password (or token, or key) comes from standard input with
    --password-stdin, or from a hidden prompt on a terminal.

    An ECR, GCR or ACR credential may log in with a cloud identity instead
    (the --aws-*, --gcp-* or --azure-* options): the server makes short-lived
    registry tokens from it and renews them, and refuses the credential unless
    a first token is made. Its secret comes from stdin, a file or a hidden
    prompt, never from an option.
    """
    identity = identity_from(
        identity_options_given, {"username": username, "password_stdin": password_stdin}
    )
    body: dict[str, Any] = {
        "name": name,
        "cluster": cluster,
        "scope": scope,
        "project": project,
        "namespace": namespace,
        "provider": provider,
        "server": registry,
        "email": email,
        "description": description,
        "active": not inactive,
        "adopt": adopt,
        "token_hosts": list(token_hosts),
    }
    if identity is None:
        body |= {"username": username, "password": _password(password_stdin, confirm=True)}
    else:
        body["identity"] = identity
    c = api.post("/credentials", body)
    if not emit(c, output):
        click.echo(f"credential {c['name']} created (id {c['id']}, {_state(c)})")


@credential.command("list")
@click.option("--cluster", help="Only this cluster's.")
@click.option("--project", help="Only those of this project and its namespaces.")
@click.option("-n", "--namespace", help="Only those that land in this namespace (needs --cluster).")
@click.option("--provider", help="Only this provider's.")
@click.option(
    "--state",
    type=click.Choice(["active", "inactive", "effective", "superseded"]),
    help="Only in this state: effective and superseded are the active ones that are used, "
    "or that a newer one for the same registry and scope replaces.",
)
@click.option("--name", "name_part", metavar="TEXT", help="Only those whose name contains TEXT.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@cursor_options
@output_option
@with_api
def credential_list(
    api: Remote,
    cluster: str | None,
    project: str | None,
    namespace: str | None,
    provider: str | None,
    state: str | None,
    name_part: str | None,
    limit: int,
    offset: int,
    cursor: str | None,
    every: bool,
    output: str,
) -> None:
    """The credentials you can see (never their secrets)."""
    params = {
        "cluster": cluster,
        "project": project,
        "namespace": namespace,
        "provider": provider,
        "state": state,
        "q": name_part,
        "limit": limit,
        "offset": offset,
        "cursor": cursor,
    }
    if cursor and offset:
        raise CLIError("give --cursor or --offset, not both")
    page = api.listing("/credentials", params, every=every)
    if emit(page, output):
        return
    # The TOKEN column only when a cloud credential is listed.
    tokens = any(c.get("identity") for c in page["items"])
    rows = [
        [
            c["id"],
            c["name"],
            c["cluster"],
            _scope(c),
            c["provider"],
            c["server"],
            c["username"],
            _state(c),
            (c.get("last_check") or {}).get("status", "never"),
            *([token_column(c)] if tokens else []),
        ]
        for c in page["items"]
    ]
    headers = [
        "ID",
        "NAME",
        "CLUSTER",
        "SCOPE",
        "PROVIDER",
        "REGISTRY",
        "USERNAME",
        "STATE",
        "CHECK",
        *(["TOKEN"] if tokens else []),
    ]
    click.echo(rows_table(headers, rows, "No credentials."))
    more_footer(page, offset, cursor)


@credential.command("show")
@click.argument("ref", metavar="ID|NAME")
@output_option
@with_api
def credential_show(api: Remote, ref: str, output: str) -> None:
    """One credential's metadata (never its secret)."""
    c = api.get(f"/credentials/{seg(credential_id(api, ref))}")
    if not emit(c, output):
        click.echo(_details(c))


@credential.command("edit")
@click.argument("ref", metavar="ID|NAME")
@click.option("--name", "new_name", help="A new name.")
@click.option("--username", help="A new user name (needs the password again).")
@click.option("--email", help="A new email (needs the password again).")
@click.option("--description", help="A new description.")
@click.option("--password-stdin", is_flag=True, help="Read the (new) password from stdin.")
@click.option(
    "--password-prompt",
    is_flag=True,
    help="Ask for the (new) password on the terminal, hidden.",
)
@click.option(
    "--adopt/--no-adopt",
    default=None,
    help="Whether to take over a same-named Secret pullkeeper did not create.",
)
@click.option(
    "--token-host",
    "token_hosts",
    multiple=True,
    help="A token server on another host the login may be sent to (host[:port] or *.domain; "
    "repeat for more; replaces the list).",
)
@click.option("--no-token-hosts", is_flag=True, help="Trust no token server on another host.")
@identity_options
@output_option
@with_api
def credential_edit(
    api: Remote,
    ref: str,
    new_name: str | None,
    username: str | None,
    email: str | None,
    description: str | None,
    password_stdin: bool,
    password_prompt: bool,
    adopt: bool | None,
    token_hosts: tuple[str, ...],
    no_token_hosts: bool,
    output: str,
    **identity_options_given: Any,
) -> None:
    """Change a credential. Its registry, scope and provider never change.

    A new user name or email needs the password again (it is never shown, so
    the server cannot keep the old one with a new login): give it with
    --password-stdin, or it is asked on a terminal.

    The --aws-*, --gcp-* or --azure-* options give an ECR, GCR or ACR
    credential a new cloud identity, whole (its secret again), in place of its
    identity or its password; the server makes a first token before it saves.

    Without options the credential opens as YAML in $VISUAL or $EDITOR, and is
    written back only if nobody changed it meanwhile.
    """
    if password_stdin and password_prompt:
        raise CLIError("give either --password-stdin or --password-prompt, not both")
    if token_hosts and no_token_hosts:
        raise CLIError("give either --token-host or --no-token-hosts, not both")
    password_given = {
        "username": username is not None,
        "password_stdin": password_stdin,
        "password_prompt": password_prompt,
    }
    identity = identity_from(identity_options_given, password_given)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "name": new_name,
            "username": username,
            "email": email,
            "description": description,
            "adopt": adopt,
            "token_hosts": list(token_hosts) if token_hosts or no_token_hosts else None,
        }.items()
        if v is not None
    }
    if identity is not None:
        changes["identity"] = identity
    # A credential logging in with a cloud identity needs no password for a new email.
    login_changes = username is not None or (
        email is not None and identity is None and not _has_identity(api, ref)
    )
    if password_stdin:
        changes["password"] = read_stdin_secret("password")
    elif password_prompt or login_changes:
        if not password_prompt and not sys.stdin.isatty():
            raise CLIError(
                "a new user name or email needs the password again: "
                "pipe it in with --password-stdin"
            )
        changes["password"] = prompt_secret("password")
    if not changes:
        editor.require(
            "--name, --username, --email, --description, --token-host, a new password or "
            "a new cloud identity"
        )
        old_name = api.get(f"/credentials/{seg(credential_id(api, ref))}")["name"]
        c, asked = _edit_in_editor(api, ref)
        if c is not None and not emit(c, output):
            secret = "; password replaced" if asked else ""
            click.echo(f"credential {c['name']} updated{secret}")
        if c is not None:
            _warn_still_named(api, c, old_name)
        return
    cid = credential_id(api, ref)
    old_name = api.get(f"/credentials/{seg(cid)}")["name"] if new_name else None
    c = api.patch(f"/credentials/{seg(cid)}", changes)
    if not emit(c, output):
        secret = (
            "; password replaced"
            if "password" in changes
            else "; new identity, first token made"
            if identity
            else ""
        )
        click.echo(f"credential {c['name']} updated{secret}")
    if old_name is not None:
        _warn_still_named(api, c, old_name)


def _warn_still_named(api: Remote, c: dict[str, Any], old_name: str) -> None:
    """After a rename, the workloads whose pods still name the old Secret, which the sync
    no longer delivers: their pulls would go without this credential."""
    if c["name"] == old_name:
        return
    try:
        found = api.get(f"/credentials/{seg(c['id'])}/workloads", {"secret": old_name})
    except RemoteError as e:
        warn(f"could not check which workloads still name the Secret {old_name}: {e.message}")
        return
    items = found["items"]
    if not items:
        return
    n = len(items)
    which = ", ".join(f"{w['kind'].lower()}/{w['name']} in {w['namespace']}" for w in items)
    warn(
        f"{n} workload{'s' if n > 1 else ''} still name{'' if n > 1 else 's'} the Secret "
        f"{old_name}, which is no longer delivered (it is {c['name']} now): {which}; give "
        f"each the new one with `pullkeeper attach KIND/NAME -n NAMESPACE --cluster "
        f"{found['cluster']}`"
    )


def _has_identity(api: Remote, ref: str) -> bool:
    """Whether the credential logs in with a cloud identity."""
    c = api.get(f"/credentials/{seg(credential_id(api, ref))}")
    return bool(c.get("identity"))


def _edit_in_editor(api: Remote, ref: str) -> tuple[dict[str, Any] | None, bool]:
    """The credential edited in an editor, and whether its password was asked for."""
    cid = credential_id(api, ref)
    # A cloud identity's tokens make the login: no user name to edit, no password to ask.
    cloud = api.get(f"/credentials/{seg(cid)}").get("identity") is not None
    if cloud:
        fields: tuple[str, ...] = ("name", "email", "description", "adopt", "token_hosts")
        note = "The login is made from the cloud identity: `credential edit --aws-...` etc."
    else:
        fields = ("name", "username", "email", "description", "adopt", "token_hosts")
        note = "A new username or email needs the password again: it is asked once you save."
    asked: list[bool] = []

    def password_again(changes: dict[str, Any]) -> None:
        if cloud or not any(k in changes for k in ("username", "email")):
            return
        if not sys.stdin.isatty():
            raise CLIError(
                "a new user name or email needs the password again, and there is no "
                "terminal to ask it on: give --username/--email with --password-stdin"
            )
        changes["password"] = prompt_secret("password")
        asked.append(True)

    c = editor.run(
        api,
        f"/credentials/{seg(cid)}",
        f"credential {ref}",
        ["credential", "edit", ref],
        fields,
        note=note,
        complete=password_again,
    )
    return c, bool(asked)


def _set_state(api: Remote, ref: str, action: str, output: str) -> None:
    c = api.post(f"/credentials/{seg(credential_id(api, ref))}/{action}")
    if emit(c, output):
        return
    line = f"credential {c['name']} is {c['state']}"
    if c.get("superseded_by"):
        line += (
            f", but superseded by {c['superseded_by']} (a newer active credential "
            "for the same registry and scope), so it is not deployed"
        )
    click.echo(line)


@credential.command("activate")
@click.argument("ref", metavar="ID|NAME")
@output_option
@with_api
def credential_activate(api: Remote, ref: str, output: str) -> None:
    """Make a credential active: deployed where its scope reaches."""
    _set_state(api, ref, "activate", output)


@credential.command("deactivate")
@click.argument("ref", metavar="ID|NAME")
@output_option
@with_api
def credential_deactivate(api: Remote, ref: str, output: str) -> None:
    """Make a credential inactive: kept, but not deployed."""
    _set_state(api, ref, "deactivate", output)


@credential.command("verify")
@click.argument("ref", metavar="ID|NAME")
@output_option
@with_api
def credential_verify(api: Remote, ref: str, output: str) -> None:
    """Log in to the registry with a credential, on the server (the secret stays there).

    Exit status 1 when the registry refuses it.
    """
    c = api.post(f"/credentials/{seg(credential_id(api, ref))}/verify")
    if not emit(c, output):
        click.echo(f"credential {c['name']} ({c['server']}): {_last_check(c)}")
    if (c.get("last_check") or {}).get("status") != "ok":
        raise SystemExit(1)


@credential.command("checks")
@click.argument("ref", metavar="ID|NAME")
@output_option
@with_api
def credential_checks(api: Remote, ref: str, output: str) -> None:
    """The credential's last checks, newest first: logins and pull checks, and why they failed."""
    result = api.get(f"/credentials/{seg(credential_id(api, ref))}/checks")
    if emit(result, output):
        return
    rows = [
        [
            when(c["at"]),
            f"pull {c['image']}" if c["kind"] == "pull" else "login",
            c["by"] or "-",
            c["status"] if not c["cause"] else f"{c['status']} ({c['cause']}): {c['message']}",
        ]
        for c in result["items"]
    ]
    click.echo(rows_table(["TIME", "CHECK", "BY", "RESULT"], rows, "Never checked."))


@credential.command("delete")
@click.argument("ref", metavar="ID|NAME")
@with_api
def credential_delete(api: Remote, ref: str) -> None:
    """Delete a credential and its secret."""
    api.delete(f"/credentials/{seg(credential_id(api, ref))}")
    click.echo(f"credential {ref} deleted")


@credential.command("status")
@click.argument("ref", metavar="ID|NAME")
@output_option
@with_api
def credential_status(api: Remote, ref: str, output: str) -> None:
    """Where the credential's Secrets stand in each namespace its scope reaches."""
    result = api.get(f"/credentials/{seg(credential_id(api, ref))}/status")
    if emit(result, output):
        return
    if result["sync"] == "off":
        click.echo("The server does not sync clusters (sync = false in its settings).")
        return
    if result["note"]:
        click.echo(result["note"])
    rows = [
        [s["cluster"], s["namespace"], s["secret"], s["state"], s["reason"], when(s["since"])]
        for s in result["items"]
    ]
    if rows:
        click.echo(
            rows_table(["CLUSTER", "NAMESPACE", "SECRET", "STATE", "REASON", "SINCE"], rows, "")
        )
    counts = ", ".join(
        f"{n} {state.replace('_', ' ')}" for state, n in result["summary"].items() if n
    )
    if counts:
        click.echo(counts)


@credential.command("effective")
@click.option("-n", "--namespace", required=True, help="The namespace.")
@click.option("--cluster", required=True, help="The cluster (name or id).")
@click.option("--image", help="Only what the kubelet would try for this image.")
@output_option
@with_api
def credential_effective(
    api: Remote, namespace: str, cluster: str, image: str | None, output: str
) -> None:
    """The credentials that apply in a namespace, in the order the kubelet tries them."""
    result = api.get(
        f"/namespaces/{seg(namespace)}/effective-credentials",
        {"cluster": cluster, "image": image},
    )
    if emit(result, output):
        return
    where = f"namespace {result['namespace']} of cluster {result['cluster']}"
    items = result["items"]
    pulled = result.get("pulled") or image
    if image and result["rewritten"]:
        click.echo(f"Admission rewrites {image} to the default registry: it is pulled as {pulled}.")
    if image and result["admission"]["violations"]:
        verdict = "refuses it" if not result["admission"]["allowed"] else "lets it in, warning"
        click.echo(f"Admission {verdict}: {'; '.join(result['admission']['violations'])}")
    for c in result["conflicts"]:
        click.echo(
            f"Not delivered here: {c['name']} ({c['scope']} scope, {c['id']}): {c['reason']}"
        )
    if not items:
        if image:
            click.echo(f"No credential in {where} matches {pulled}: it is pulled anonymously.")
        else:
            click.echo(f"No credential applies in {where}.")
        return
    what = f"for {pulled}" if image else f"in {where}"
    n = len(items)
    click.echo(f"{n} credential{'s' if n > 1 else ''} {what}, in the order the kubelet tries them:")
    rows = [
        [str(i), c["secret_name"], _scope(c), c["server"], c["username"], c["id"]]
        for i, c in enumerate(items, 1)
    ]
    click.echo(rows_table(["#", "SECRET", "SCOPE", "REGISTRY", "USERNAME", "ID"], rows, ""))


@credential.command("config")
@click.argument("ref", metavar="ID|NAME")
@click.option(
    "--merge-into",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the login into this docker config.json (e.g. ~/.docker/config.json) instead "
    "of printing it, keeping the file's other entries, helpers and mode.",
)
@with_api
def credential_config(api: Remote, ref: str, merge_into: Path | None) -> None:
    """Print the credential's .dockerconfigjson, decoded: it holds the password.

    For admins and the owners of the credential's project; the server records
    every read in the audit trail. With --merge-into, the login goes into a
    docker config.json for a person or a CI job (a new file is 0600), and
    nothing secret is printed.
    """
    path = f"/credentials/{seg(credential_id(api, ref))}/dockerconfigjson"
    if merge_into is None:
        click.echo(api.raw(path))
        return
    # Not at the top: only a merge loads the credential-file use cases.
    from pullkeeper.services import config_files  # noqa: PLC0415

    try:
        # The secret is read (and the read audited) only for a file that can take it.
        merged = config_files.merge_into(merge_into, lambda: api.raw(path))
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    for registry, helper in merged.shadowed.items():
        warn(
            f"{merge_into} has docker ask docker-credential-{helper} for {registry}, not this "
            "entry: for docker to use this login, take that helper out of the file"
        )
    for verb, registries in (("added", merged.added), ("replaced", merged.replaced)):
        if registries:
            click.echo(f"{verb} {', '.join(registries)} in {merge_into}")
