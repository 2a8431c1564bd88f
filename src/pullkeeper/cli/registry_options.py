"""What every command that talks to a registry takes: TLS options and where credentials are.

The options reach the command as one `RegistryAccess`; `pullkeeper.cli.candidates`
turns it into the credentials to try and the TLS to use.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.session import server_options


@dataclasses.dataclass(frozen=True, slots=True)
class RegistryAccess:
    """A command's registry-access options: where the credentials are (--config, the
    server), how to reach the registry (TLS, token hosts)."""

    configs: tuple[str, ...]
    ca_file: Path | None
    client_cert: Path | None
    client_key: Path | None
    insecure: bool
    token_hosts: tuple[str, ...]
    server: str | None
    token: str | None


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--config: every command with `registry_access` takes it, placed where its help lists it."""
    return click.option(
        "--config",
        "configs",
        multiple=True,
        metavar="FILE",
        help="A docker config.json, .dockercfg or Secret manifest with the credentials; "
        "repeat for several, tried in the kubelet's order (default: ~/.docker/config.json).",
    )(f)


_TLS_OPTIONS = (
    click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="CA bundle that signed the registry's certificate (default: the system's, "
        "plus what `pullkeeper registry trust` stored for that registry).",
    ),
    click.option(
        "--cert",
        "client_cert",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Client certificate (PEM) for registries that require one.",
    ),
    click.option(
        "--key",
        "client_key",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The client certificate's private key, if not in --cert.",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="The registry is insecure (as Docker's --insecure-registry): HTTPS "
        "without verifying it, else plain HTTP. Only on a network you trust.",
    ),
    click.option(
        "--token-host",
        "token_hosts",
        multiple=True,
        metavar="HOST",
        help="A token server on another host the logins may be sent to (host[:port] "
        "or *.domain; repeat for more). The registry's own host and the well-known "
        "ones (auth.docker.io for Docker Hub...) need none.",
    ),
)


def _tls_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_TLS_OPTIONS):
        f = option(f)
    return f


_FIELDS = tuple(field.name for field in dataclasses.fields(RegistryAccess))


def registry_access(f: Callable[..., Any]) -> Callable[..., Any]:
    """A command that talks to a registry: adds the TLS options and --server/--token, and
    passes them with its --config (see `config_option`) as one value, `access`."""

    @_tls_options
    @server_options
    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        access = RegistryAccess(**{name: kwargs.pop(name) for name in _FIELDS})
        return f(*args, access=access, **kwargs)

    return command
