"""What every command that talks to a registry takes: TLS options and where credentials are.

Credentials come from `--config FILE` (a docker config.json, .dockercfg or
Secret manifest), else from the pullkeeper server when logged in (the active
credentials it holds for the image's registry, whose secrets the user may
read), else from `~/.docker/config.json` (`$DOCKER_CONFIG`), with its
credential helpers asked as docker asks them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError, warn
from pullkeeper.core import realms


def tls_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
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
    ):
        f = option(f)
    return f


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "configs",
        multiple=True,
        metavar="FILE",
        help="A docker config.json, .dockercfg or Secret manifest with the credentials; "
        "repeat for several, tried in the kubelet's order (default: ~/.docker/config.json).",
    )(f)


def make_tls(
    ca_file: Path | None, client_cert: Path | None, client_key: Path | None, insecure: bool
) -> Any:
    from pullkeeper.services import pull_trial

    if client_key and not client_cert:
        raise CLIError("--key needs --cert")
    return pull_trial.tls(ca_file, client_cert, client_key, insecure)


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def candidates(
    image: str,
    configs: Sequence[str],
    server: str | None = None,
    token: str | None = None,
    token_hosts: Sequence[str] = (),
) -> list[Any]:
    """The credentials to try for image, in the kubelet's order, each trusting token_hosts."""
    from pullkeeper.services import pull_trial

    try:
        trusted = tuple(realms.check_token_host(h) for h in token_hosts)
    except realms.RealmError as e:
        raise CLIError(f"--token-host: {e}") from None
    return [pull_trial.trusting(c, trusted) for c in _candidates(image, configs, server, token)]


def _candidates(
    image: str, configs: Sequence[str], server: str | None, token: str | None
) -> list[Any]:
    from pullkeeper.services import config_files, pull_trial

    paths = list(configs)
    helper_first: list[Any] = []
    if not paths:
        from_server = _from_server(image, server, token)
        if from_server:
            return from_server
        default = docker_config_path()
        if not default.is_file():
            return []
        paths = [str(default)]
        helper_first = _from_helpers(image, str(default))
    try:
        result = config_files.resolve(image, paths)
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    for message in result.warnings:
        if not helper_first or "credential helpers" not in message:
            warn(message)
    return helper_first + pull_trial.candidates_from_keyring(result.matches)


def _from_helpers(image: str, path: str) -> list[Any]:
    """docker's own order for its config: credHelpers[host], else credsStore."""
    from pullkeeper.services import config_files, pull_trial

    try:
        found, warnings = config_files.helper_login(image, path)
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    for message in warnings:
        warn(message)
    if found is None:
        return []
    if found.identity_token:
        return [pull_trial.candidate(found.source, found.server, identity_token=found.secret)]
    return [pull_trial.candidate(found.source, found.server, found.username, found.secret)]


def _logged_in(server: str | None, token: str | None) -> Any:
    """A client for the server the user is logged in to (or names), else None."""
    from pullkeeper.cli import session

    server = server or os.environ.get(session.SERVER_ENV)
    token = token or os.environ.get(session.TOKEN_ENV)
    if not (server or session.load()):
        return None
    return session.connect(server, token)


def _from_server(image: str, server: str | None, token: str | None) -> list[Any] | None:
    """The server's effective credentials for image's registry, in the kubelet's order.

    Only those whose secret the user may read (admins, project owners; each read
    is audited) can be used here; the others are named in a warning.
    """
    from pullkeeper.cli.remote import RemoteError
    from pullkeeper.core import dockerconfig
    from pullkeeper.core.keyring import Keyring
    from pullkeeper.services import pull_trial

    remote = _logged_in(server, token)
    if remote is None:
        return None
    keyring: Keyring = Keyring()
    names: dict[str, str] = {}
    hosts: dict[str, tuple[str, ...]] = {}
    found, refused = [], []
    with remote:
        offset = 0
        while True:
            page = remote.get("/credentials", {"state": "active", "limit": 500, "offset": offset})
            for item in page["items"]:
                if item["effective"]:
                    # The keyring orders them; the secrets are fetched only for its matches.
                    keyring.add([(item["server"], dockerconfig.AuthEntry())], item["id"])
                    names[item["id"]] = item["name"]
                    hosts[item["id"]] = tuple(item.get("token_hosts") or ())
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                break
        for match in keyring.lookup(image):
            try:
                raw = remote.raw(f"/credentials/{match.source}/dockerconfigjson")
            except RemoteError as e:
                if e.status != 403:
                    raise
                refused.append(names[match.source])
                continue
            for registry, entry in dockerconfig.parse_config_json(raw).auths.items():
                found.append(
                    pull_trial.trusting(
                        pull_trial.candidate(
                            f"server:{names[match.source]}",
                            registry,
                            entry.username,
                            entry.password,
                            credential_id=match.source,
                        ),
                        hosts[match.source],
                    )
                )
    if refused:
        warn(
            f"you may not read the secret of {', '.join(refused)} on the server; to check with "
            "them, let the server do it: pullkeeper check IMAGE -n NAMESPACE --cluster CLUSTER"
        )
    return found
