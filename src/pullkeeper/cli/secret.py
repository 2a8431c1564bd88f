"""`pullkeeper secret`: registry-credential Secrets, offline."""

from __future__ import annotations

import sys

import click

from pullkeeper.cli.common import CLIError, echo_json, output_option, table, warn
from pullkeeper.core.secret import MISSING_REGISTRY_FIELDS, NAME_REQUIRED
from pullkeeper.services import config_files

_secret_output = click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Manifest format, as kubectl prints it.",
)


@click.group()
def secret() -> None:
    """Create, import and decode registry-credential Secrets."""


@secret.group("create")
def create() -> None:
    """Create a Secret (printed, not applied: pipe it to kubectl apply -f -)."""


def _read_password_stdin() -> str:
    # As `docker login --password-stdin`: one trailing newline is not part of it.
    # Bytes that are not UTF-8 pass through as they are, as with kubectl.
    data = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    return data.removesuffix("\n").removesuffix("\r")


@create.command("docker-registry")
@click.argument("name")
@click.option(
    "--docker-server",
    default="https://index.docker.io/v1/",
    show_default=True,
    help="Registry address, used verbatim as the key.",
)
@click.option("--docker-username", default="", help="User name for the registry (required).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--docker-password",
    help="Password on the command line (lands in shell history; prefer --password-stdin).",
)
@click.option("--docker-email", default="", help="Email (optional; omitted when empty).")
@click.option("-n", "--namespace", help="Namespace of the Secret.")
@_secret_output
def create_docker_registry(
    name: str,
    docker_server: str,
    docker_username: str,
    password_stdin: bool,
    docker_password: str | None,
    docker_email: str,
    namespace: str | None,
    output: str,
) -> None:
    """The same Secret as `kubectl create secret docker-registry`, byte for byte.

    The password comes from --password-stdin, or a prompt when standard input
    is a terminal; --docker-password works but leaves it in shell history.
    """
    # kubectl's checks, in kubectl's order: before any password is asked for or warned about.
    if not name:
        raise CLIError(NAME_REQUIRED)
    if not docker_username or not docker_server:
        raise CLIError(MISSING_REGISTRY_FIELDS)
    if password_stdin and docker_password is not None:
        raise CLIError("give the password once: --password-stdin or --docker-password, not both")
    if password_stdin:
        password = _read_password_stdin()
    elif docker_password is not None:
        if docker_password:
            warn(
                "a password on the command line lands in shell history and process listings; "
                "use --password-stdin"
            )
        password = docker_password
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, err=True)
    else:
        raise CLIError("no password: pass --password-stdin and send it on standard input")
    try:
        obj = config_files.docker_registry_secret(
            name, docker_server, docker_username, password, docker_email, namespace
        )
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    click.echo(config_files.dumps_secret(obj, output), nl=False)


@secret.command("import")
@click.argument("file", metavar="FILE")
@click.option("--name", default="regcred", show_default=True, help="Name of the Secret.")
@click.option("-n", "--namespace", help="Namespace of the Secret.")
@_secret_output
def import_(file: str, name: str, namespace: str | None, output: str) -> None:
    """One Secret from a whole ~/.docker/config.json or .dockercfg, every registry.

    Credentials kept by docker-credential-* helpers (credsStore, credHelpers)
    are fetched from those helpers.
    """
    try:
        imported = config_files.import_config(file, name, namespace)
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    for w in imported.warnings:
        warn(w)
    click.echo(config_files.dumps_secret(imported.secret, output), nl=False)


@secret.command("decode")
@click.argument("file", metavar="FILE|-")
@click.option("--show-secrets", is_flag=True, help="Include passwords in the output.")
@output_option
def decode(file: str, show_secrets: bool, output: str) -> None:
    """Decode a Secret manifest (or a raw config): every registry, user and email."""
    try:
        decoded = config_files.decode(file)
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    if output == "json":
        echo_json(
            {
                "type": decoded.type,
                "auths": {
                    key: {
                        "username": entry.username,
                        "password": entry.password if show_secrets else None,
                        "email": entry.email,
                    }
                    for key, entry in decoded.auths.items()
                },
            }
        )
        return
    click.echo(f"type: {decoded.type}")
    rows = []
    for key, entry in decoded.auths.items():
        if show_secrets:
            password = entry.password
        else:
            password = "(set)" if entry.has_password else "(empty)"
        rows.append([key, entry.username or "-", entry.email or "-", password])
    if rows:
        click.echo(table(["REGISTRY", "USERNAME", "EMAIL", "PASSWORD"], rows))
    else:
        click.echo("no registry entries")
