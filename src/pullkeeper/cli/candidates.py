"""The credentials a command that talks to a registry tries, and the TLS it reaches it with.

Credentials come from `--config FILE` (a docker config.json, .dockercfg or
Secret manifest), else from the pullkeeper server when logged in (the active
credentials it holds for the image's registry, whose secrets the user may
read), else from `~/.docker/config.json` (`$DOCKER_CONFIG`), with its
credential helpers asked as docker asks them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pullkeeper.cli import session
from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.registry_options import RegistryAccess
from pullkeeper.cli.remote import Remote, RemoteError
from pullkeeper.core import dockerconfig, realms
from pullkeeper.core.keyring import Keyring
from pullkeeper.services import config_files, pull_trial


def tls(access: RegistryAccess) -> Any:
    """How to reach the registry, as --ca-file, --cert, --key and --insecure say."""
    if access.client_key and not access.client_cert:
        raise CLIError("--key needs --cert")
    return pull_trial.tls(access.ca_file, access.client_cert, access.client_key, access.insecure)


def token_hosts(access: RegistryAccess) -> tuple[str, ...]:
    """The --token-host hosts, checked."""
    try:
        return tuple(realms.check_token_host(h) for h in access.token_hosts)
    except realms.RealmError as e:
        raise CLIError(f"--token-host: {e}") from None


def for_image(image: str, access: RegistryAccess) -> list[pull_trial.Candidate]:
    """The credentials to try for image, in the kubelet's order, each trusting --token-host."""
    trusted = token_hosts(access)
    return [pull_trial.trusting(c, trusted) for c in _found(image, access)]


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def _found(image: str, access: RegistryAccess) -> list[pull_trial.Candidate]:
    paths = list(access.configs)
    helper_first: list[pull_trial.Candidate] = []
    if not paths:
        from_server = _from_server(image, access)
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


def _from_helpers(image: str, path: str) -> list[pull_trial.Candidate]:
    """docker's own order for its config: credHelpers[host], else credsStore."""
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


def _logged_in(access: RegistryAccess) -> Remote | None:
    """A client for the server the user is logged in to (or names), else None."""
    server = access.server or os.environ.get(session.SERVER_ENV)
    token = access.token or os.environ.get(session.TOKEN_ENV)
    if not (server or session.load()):
        return None
    return session.connect(server, token)


def _from_server(image: str, access: RegistryAccess) -> list[pull_trial.Candidate] | None:
    """The server's effective credentials for image's registry, in the kubelet's order.

    Only those whose secret the user may read (admins, project owners; each read
    is audited) can be used here; the others are named in a warning.
    """
    remote = _logged_in(access)
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
