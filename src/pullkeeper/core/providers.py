"""The registry providers a credential can be for: addresses, defaults and checks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pullkeeper.core.dockerconfig import InvalidUsername, check_username

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"

# host[:port], the way a custom registry address is written (no scheme, no path).
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])"
HOST_PORT = re.compile(_HOST + r"(?::[0-9]{1,5})?")


class ProviderError(ValueError):
    """A credential that does not fit its provider; `field` names the input to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    title: str
    default_server: str | None = None
    # A full-match pattern for the server, and how to describe it in an error.
    server_pattern: str | None = None
    server_hint: str = "a registry address host[:port] without scheme"
    fixed_username: str | None = None
    username_hint: str = ""


PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Provider(
            "dockerhub",
            "Docker Hub",
            DOCKER_HUB_SERVER,
            re.escape(DOCKER_HUB_SERVER),
            "Docker Hub's key https://index.docker.io/v1/",
        ),
        Provider("quay", "Quay.io", "quay.io", r"quay\.io", "quay.io"),
        Provider("ghcr", "GitHub Container Registry", "ghcr.io", r"ghcr\.io", "ghcr.io"),
        Provider(
            "gitlab",
            "GitLab Container Registry",
            "registry.gitlab.com",
            HOST_PORT.pattern,
            "registry.gitlab.com or your GitLab's registry host[:port]",
        ),
        Provider("harbor", "Harbor"),
        Provider("artifactory", "JFrog Artifactory"),
        Provider(
            "ecr",
            "Amazon ECR",
            None,
            r"[0-9]{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?",
            "ACCOUNT.dkr.ecr.REGION.amazonaws.com",
            "AWS",
            "ECR tokens always use the user name AWS",
        ),
        Provider(
            "gcr",
            "Google Container Registry / Artifact Registry",
            "gcr.io",
            r"(?:(?:[a-z]+\.)?gcr\.io|[a-z0-9-]+-docker\.pkg\.dev)",
            "gcr.io, a regional host (eu.gcr.io, us.gcr.io, asia.gcr.io) or REGION-docker.pkg.dev",
            "_json_key",
            "a service-account JSON key logs in as _json_key",
        ),
        Provider(
            "acr",
            "Azure Container Registry",
            None,
            r"[a-z0-9]{5,50}\.azurecr\.(?:io|cn|us)",
            "NAME.azurecr.io",
        ),
        Provider(
            "ibm",
            "IBM Cloud Container Registry",
            "icr.io",
            r"(?:[a-z]{2}\.)?icr\.io",
            "icr.io or REGION.icr.io",
            "iamapikey",
            "IBM Cloud API keys log in as iamapikey",
        ),
        Provider(
            "ocir",
            "Oracle Cloud Infrastructure Registry",
            None,
            r"[a-z0-9-]+\.ocir\.io",
            "REGION.ocir.io",
        ),
        Provider("custom", "Custom registry"),
    )
}


def registry_host(server: str) -> str:
    """The host[:port] of a credential's address (Docker Hub's is a URL): docker.io for
    Docker Hub, as image references name it."""
    text = server.removeprefix("https://").removeprefix("http://")
    host = text.split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "docker.io") else host


def address(provider_id: str, server: str | None) -> str:
    """The registry address a credential of the provider is for (its own when none is
    given), or ProviderError saying what to fix."""
    provider = PROVIDERS.get(provider_id)
    if provider is None:
        raise ProviderError(
            "provider", f"unknown provider {provider_id!r}; one of: " + ", ".join(PROVIDERS)
        )
    server = server or provider.default_server
    if not server:
        raise ProviderError("server", f"{provider.title} needs a server: {provider.server_hint}")
    pattern = provider.server_pattern or HOST_PORT.pattern
    if not re.fullmatch(pattern, server):
        raise ProviderError("server", f"{server!r} is not {provider.server_hint}")
    return server


def check(provider_id: str, server: str | None, username: str, password: str) -> tuple[str, str]:
    """The (server, username) a credential is stored with, or ProviderError saying what to fix
    (the first of its problems)."""
    found = problems(provider_id, server, username, password)
    if found:
        raise found[0]
    provider = PROVIDERS[provider_id]
    return address(provider_id, server), provider.fixed_username or username


def problems(
    provider_id: str, server: str | None, username: str, password: str
) -> list[ProviderError]:
    """Every way a credential does not fit its provider, at most one per field, in the order
    of the fields: the address, the user name, the password (a form shows them all at once)."""
    try:
        address(provider_id, server)
    except ProviderError as e:
        if e.field == "provider":
            return [e]
        found = [e]
    else:
        found = []
    provider = PROVIDERS[provider_id]
    if provider.fixed_username:
        if username and username != provider.fixed_username:
            found.append(ProviderError("username", f"{provider.username_hint}, not {username!r}"))
        username = provider.fixed_username
    if not username:
        found.append(ProviderError("username", "a user name is required"))
    else:
        try:
            check_username(username)
        except InvalidUsername as e:
            found.append(ProviderError("username", str(e)))
    if not password:
        found.append(ProviderError("password", "a password or token is required"))
    elif provider_id == "gcr":
        try:
            key = json.loads(password)
        except (ValueError, RecursionError):
            key = None
        if not isinstance(key, dict) or "private_key" not in key or "client_email" not in key:
            found.append(
                ProviderError(
                    "password",
                    "GCR needs a service-account JSON key (with client_email and "
                    "private_key) as the password",
                )
            )
    return found
