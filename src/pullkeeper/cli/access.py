"""`pullkeeper user|token|audit`: who may use the server, and what they did."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from pullkeeper.cli import session as saved
from pullkeeper.cli.common import CLIError, cursor_options, warn
from pullkeeper.cli.remote import Remote, seg
from pullkeeper.cli.render import details, emit, more_footer, output_option, rows_table, when
from pullkeeper.cli.session import prompt_secret, read_stdin_secret, with_api
from pullkeeper.core import passwords


def _check_password(password: str, username: str) -> None:
    # The server applies the same rule; refusing here keeps a weak password off the wire.
    try:
        passwords.check(password, username)
    except passwords.WeakPassword as e:
        raise CLIError(str(e)) from None


# --------------------------------------------------------------------------- users


@click.group()
def user() -> None:
    """Users of the server (admins only)."""


@user.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="May do everything (not with --viewer).")
@click.option(
    "--viewer",
    is_flag=True,
    help="Reads every object's metadata, never a secret (not with --admin).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@output_option
@with_api
def user_create(
    api: Remote, username: str, admin: bool, viewer: bool, password_stdin: bool, output: str
) -> None:
    """Create a user; the password comes from stdin or a hidden prompt.

    Give them a role in projects with `pullkeeper project member set`.
    """
    if admin and viewer:
        # Before the password is asked for; the server says the same.
        raise CLIError("a user is an admin or a viewer, not both; give --admin or --viewer")
    password = (
        read_stdin_secret("password") if password_stdin else prompt_secret("password", confirm=True)
    )
    _check_password(password, username)
    body = {"username": username, "password": password, "admin": admin, "viewer": viewer}
    u = api.post("/users", body)
    if not emit(u, output):
        click.echo(f"user {u['username']} created (id {u['id']})")


@user.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@output_option
@with_api
def user_reset_password(api: Remote, username: str, password_stdin: bool, output: str) -> None:
    """Set another user's password (admins); all their sessions and tokens are revoked.

    Your own password is changed in the web UI, with the current one.
    """
    password = (
        read_stdin_secret("password")
        if password_stdin
        else prompt_secret("new password", confirm=True)
    )
    _check_password(password, username)
    result = api.put(f"/users/{seg(username)}/password", {"password": password})
    if not emit(result, output):
        click.echo(
            f"password of {result['user']} reset; {result['revoked_tokens']} of their "
            "sessions and tokens revoked"
        )


def _kind(u: dict[str, Any]) -> str:
    kind = "admin" if u["admin"] else "viewer" if u["viewer"] else "user"
    return f"{kind} (disabled)" if u.get("disabled") else kind


@user.command("list")
@output_option
@with_api
def user_list(api: Remote, output: str) -> None:
    """Every user."""
    result = api.get("/users")
    if emit(result, output):
        return
    rows = [[u["username"], _kind(u), when(u["created_at"]), u["id"]] for u in result["items"]]
    click.echo(rows_table(["USERNAME", "KIND", "CREATED", "ID"], rows, "No users."))


@user.command("disable")
@click.argument("username")
@output_option
@with_api
def user_disable(api: Remote, username: str, output: str) -> None:
    """Disable a user (admins): kept with their audit history, but they cannot log in, and
    all their sessions and tokens are revoked at once. Not yourself, nor the last admin.

    `pullkeeper user enable` lets them log in again; the revoked tokens stay revoked.
    """
    result = api.post(f"/users/{seg(username)}/disable")
    if not emit(result, output):
        click.echo(
            f"user {result['username']} disabled; {result['revoked_tokens']} of their "
            "sessions and tokens revoked"
        )


@user.command("enable")
@click.argument("username")
@output_option
@with_api
def user_enable(api: Remote, username: str, output: str) -> None:
    """Let a disabled user log in again (admins); their old tokens stay revoked."""
    result = api.post(f"/users/{seg(username)}/enable")
    if not emit(result, output):
        click.echo(f"user {result['username']} enabled")


@user.command("delete")
@click.argument("username")
@click.option("-y", "--yes", is_flag=True, help="Delete without asking.")
@with_api
def user_delete(api: Remote, username: str, yes: bool) -> None:
    """Delete a user with their project memberships and tokens (admins); the audit trail
    keeps what they did. Not yourself, nor the last admin.

    Asks first, naming what goes, unless --yes. To keep the user, `pullkeeper user disable`.
    """
    if not yes:
        shown = api.get(f"/users/{seg(username)}")
        projects = [f"{p['cluster']}/{p['name']}" for p in shown["projects"]]
        goes = f"memberships in {len(projects)} project(s)"
        if projects:
            goes += f" ({', '.join(projects)})"
        goes += f" and {shown['valid_tokens']} valid token(s)"
        if not sys.stdin.isatty():
            raise CLIError(
                f"standard input is not a terminal, so pullkeeper cannot ask before deleting "
                f"{username} with their {goes}; add --yes"
            )
        if not click.confirm(f"Delete {username} with their {goes}?", default=False, err=True):
            click.echo("Not deleted.", err=True)
            raise SystemExit(1)
    api.delete(f"/users/{seg(username)}")
    click.echo(f"user {username} deleted")


# --------------------------------------------------------------------------- tokens


@click.group()
def token() -> None:
    """Your API tokens: for scripts and CI (PULLKEEPER_TOKEN), expiring, revocable."""


@token.command("create")
@click.option("--name", default="", help="What the token is for.")
@click.option(
    "--expires-in-days",
    type=click.IntRange(1, 3650),
    help="Lifetime [the server's default, 90 days].",
)
@output_option
@with_api
def token_create(api: Remote, name: str, expires_in_days: int | None, output: str) -> None:
    """Create an API token for yourself. It is shown once, now: store it."""
    issued = api.post("/tokens", {"name": name, "expires_in_days": expires_in_days})
    if emit(issued, output):
        return
    click.echo(
        details(
            [
                ("token", issued["token"]),
                ("id", issued["id"]),
                ("expires", when(issued["expires_at"]) if issued["expires_at"] else "never"),
            ]
        )
    )
    click.echo("This is the only time the token is shown; store it now.", err=True)


def token_state(t: dict[str, Any]) -> str:
    if t["revoked"]:
        return "revoked"
    if t["expires_at"] and datetime.fromisoformat(t["expires_at"]) <= datetime.now().astimezone():
        return "expired"
    return "valid"


@token.command("list")
@output_option
@with_api
def token_list(api: Remote, output: str) -> None:
    """Your tokens (their values are never shown again); * marks this session's."""
    result = api.get("/tokens")
    if emit(result, output):
        return
    current = saved.load()
    current_id = current.token_id if current and current.server == api.base_url else None
    rows = [
        [
            t["id"] + (" *" if t["id"] == current_id else ""),
            t["name"],
            when(t["created_at"]),
            when(t["expires_at"]) if t["expires_at"] else "never",
            token_state(t),
        ]
        for t in result["items"]
    ]
    click.echo(rows_table(["ID", "NAME", "CREATED", "EXPIRES", "STATE"], rows, "No tokens."))


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@with_api
def token_revoke(api: Remote, token_id: str) -> None:
    """Revoke a token now (yours; admins may revoke anyone's)."""
    api.delete(f"/tokens/{seg(token_id)}")
    click.echo(f"token {token_id} revoked")
    current = saved.load()
    if current and current.server == api.base_url and current.token_id == token_id:
        warn("that was this session's token: run `pullkeeper login` again")


# --------------------------------------------------------------------------- audit


def _object(e: dict[str, Any]) -> str:
    after, before = e.get("after") or {}, e.get("before") or {}
    kind = e["object_type"]
    name = None
    if kind != "token":  # a token's "name" is what it is for, not which one
        name = after.get("name") or before.get("name") or after.get("username")
    label = f"{kind} {name or e['object_id']}"
    member = after.get("user") or before.get("user")
    if kind == "project" and member:
        label += f" (user {member})"
    return label


@click.command()
@click.option("--action", help="Only this action, e.g. credential.create or user.login.")
@click.option("--user", "user_name", metavar="USER", help="Only what USER did.")
@click.option("--object-type", help="Only about this kind: credential, cluster, project, ...")
@click.option("--object-id", help="Only about this object.")
@click.option("--since", metavar="ISO", help="Only from this moment: 2024-05-01 or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@cursor_options
@output_option
@with_api
def audit(
    api: Remote,
    action: str | None,
    user_name: str | None,
    object_type: str | None,
    object_id: str | None,
    since: str | None,
    limit: int,
    offset: int,
    cursor: str | None,
    every: bool,
    output: str,
) -> None:
    """The audit trail, newest first: who did what, when, from where (never a secret).

    Admins see everything; project owners their projects' events and their own.
    """
    if since is not None:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise CLIError(
                f"--since {since!r} is not an ISO date or time (2024-05-01, 2024-05-01T12:00Z)"
            ) from None
    params = {
        "action": action,
        "user": user_name,
        "object_type": object_type,
        "object_id": object_id,
        "since": since,
        "limit": limit,
        "offset": offset,
        "cursor": cursor,
    }
    if cursor and offset:
        raise CLIError("give --cursor or --offset, not both")
    page = api.listing("/audit", params, every=every)
    if emit(page, output):
        return
    rows = [
        [when(e["at"]), e["actor"], e["source"], e["action"], _object(e)] for e in page["items"]
    ]
    click.echo(rows_table(["TIME", "USER", "SOURCE", "ACTION", "OBJECT"], rows, "No events."))
    more_footer(page, offset, cursor)
