"""`pullkeeper login` and `pullkeeper logout`: the saved session with a server."""

from __future__ import annotations

import sys

import click

from pullkeeper.cli import session as saved
from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.remote import Remote, RemoteError, is_loopback, normalize_url, seg
from pullkeeper.cli.render import when


@click.command()
@click.argument("url")
@click.option("-u", "--username", help="User name (asked on a terminal when not given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Save an existing API token read from standard input instead of logging in "
    "with a password.",
)
def login(url: str, username: str | None, password_stdin: bool, token_stdin: bool) -> None:
    """Log in to the server at URL and save the session.

    The password is asked on the terminal with the input hidden, or read from
    standard input with --password-stdin; it is never a flag. The server's URL
    and the API token it issues are saved in
    $XDG_CONFIG_HOME/pullkeeper/session.json (default ~/.config/pullkeeper/),
    readable by you only. Later commands use them unless given --server/--token
    (or PULLKEEPER_SERVER/PULLKEEPER_TOKEN).
    """
    if password_stdin and token_stdin:
        raise CLIError("give either --password-stdin or --token-stdin, not both")
    base = normalize_url(url)
    if base.startswith("http://") and not is_loopback(base):
        warn(f"{base} is plain HTTP: the password and the token cross the network unencrypted")

    if token_stdin:
        if username:
            raise CLIError("--username does not go with --token-stdin: the token names its user")
        token = saved.read_stdin_secret("token")
        with Remote(base, token) as api:
            me = api.get("/me")
        session = saved.Session(server=base, token=token, username=me["username"])
    else:
        if not username:
            if password_stdin or not sys.stdin.isatty():
                raise CLIError("give --username: there is no terminal to ask for it")
            username = str(click.prompt("Username", err=True)).strip()
        password = (
            saved.read_stdin_secret("password")
            if password_stdin
            else saved.prompt_secret("password")
        )
        with Remote(base) as anonymous:
            issued = anonymous.post("/login", {"username": username, "password": password})
        with Remote(base, issued["token"]) as api:
            me = api.get("/me")
        session = saved.Session(
            server=base,
            token=issued["token"],
            username=me["username"],
            token_id=issued["id"],
            expires_at=issued.get("expires_at"),
        )
    path = saved.save(session)
    role = " (admin)" if me.get("admin") else " (viewer)" if me.get("viewer") else ""
    click.echo(f"Logged in to {base} as {session.username}{role}.")
    expiry = f"; the token expires {when(session.expires_at)}" if session.expires_at else ""
    click.echo(f"Session saved in {path}{expiry}.")


@click.command()
def logout() -> None:
    """Revoke the saved session's token on the server and forget the session.

    A token saved with `login --token-stdin` is not revoked (logout does not
    know its id): revoke it with `pullkeeper token revoke ID`.
    """
    session = saved.load()
    if session is None:
        click.echo("Not logged in.")
        return
    note = ""
    if session.token_id is None:
        note = (
            " The token was saved with --token-stdin and stays valid; "
            "revoke it with `pullkeeper token revoke ID` if it should not."
        )
    else:
        try:
            with Remote(session.server, session.token) as api:
                api.delete(f"/tokens/{seg(session.token_id)}")
            note = " The token is revoked."
        except RemoteError as e:
            if e.status in (401, 404):  # revoked, expired or unknown: nothing left to revoke
                note = " The token was no longer valid."
            else:
                warn(f"the token could not be revoked: {e.message}")
                note = f" The token stays valid until {when(session.expires_at)}."
    saved.remove()
    click.echo(f"Logged out of {session.server}.{note}")
