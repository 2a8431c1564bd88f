"""`pullkeeper secret`: registry-credential Secrets, offline."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pullkeeper.cli.common import CLIError, echo_json, output_option, table, warn
from pullkeeper.core.names import InvalidName
from pullkeeper.core.secret import MISSING_REGISTRY_FIELDS, NAME_REQUIRED, Metadata
from pullkeeper.services import config_files

_secret_output = click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Manifest format, as kubectl prints it.",
)


_F = TypeVar("_F", bound=Callable[..., Any])


def _metadata_options(f: _F) -> _F:
    """-n, --label and --annotation: kubectl's "customize the Secret before storing it"."""
    f = click.option(
        "--annotation",
        "annotations",
        multiple=True,
        metavar="KEY=VALUE",
        help="An annotation of the Secret (repeatable).",
    )(f)
    f = click.option(
        "--label",
        "labels",
        multiple=True,
        metavar="KEY=VALUE",
        help="A label of the Secret (repeatable); checked as the API server checks labels.",
    )(f)
    return click.option("-n", "--namespace", help="Namespace of the Secret.")(f)


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise CLIError(f"{option} {item!r}: not KEY=VALUE")
        if key in pairs:
            raise CLIError(f"{option} {key!r} given twice; give each key once")
        pairs[key] = value
    return pairs


def _metadata(
    namespace: str | None, labels: tuple[str, ...], annotations: tuple[str, ...]
) -> Metadata:
    """The Secret's metadata, checked before any file or password is read."""
    metadata = Metadata(namespace, _pairs(labels, "--label"), _pairs(annotations, "--annotation"))
    try:
        metadata.validate()
    except InvalidName as e:
        raise CLIError(str(e)) from None
    return metadata


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
@_metadata_options
@_secret_output
def create_docker_registry(
    name: str,
    docker_server: str,
    docker_username: str,
    password_stdin: bool,
    docker_password: str | None,
    docker_email: str,
    namespace: str | None,
    labels: tuple[str, ...],
    annotations: tuple[str, ...],
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
    metadata = _metadata(namespace, labels, annotations)
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
            name, docker_server, docker_username, password, docker_email, metadata
        )
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    click.echo(config_files.dumps_secret(obj, output), nl=False)


@secret.command("import")
@click.argument("file", metavar="FILE")
@click.option("--name", default="regcred", show_default=True, help="Name of the Secret.")
@_metadata_options
@_secret_output
def import_(
    file: str,
    name: str,
    namespace: str | None,
    labels: tuple[str, ...],
    annotations: tuple[str, ...],
    output: str,
) -> None:
    """One Secret from a whole ~/.docker/config.json or .dockercfg, every registry.

    Credentials kept by docker-credential-* helpers (credsStore, credHelpers)
    are fetched from those helpers.
    """
    try:
        imported = config_files.import_config(file, name, _metadata(namespace, labels, annotations))
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
