"""The exchanges of cloud identities for registry tokens, made for credentials: each handed
to its cloud's adapter (cloud/), at the endpoints this server's settings name.

An exchange takes up to tens of seconds and holds no transaction: it runs before the write
that stores its token (a create, an edit, a refresh).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.cloud.exchange import token
from pullkeeper.core import providers
from pullkeeper.core.cloud import AwsIdentity, AzureIdentity, CloudLogin, ExchangeError, Token
from pullkeeper.registry.client import http_client
from pullkeeper.registry.errors import RegistryError
from pullkeeper.services import cloud_tokens, credentials
from pullkeeper.services.actor import Actor
from pullkeeper.services.checks import tls_for
from pullkeeper.services.errors import Forbidden, Invalid
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings

__all__ = ["endpoints", "exchange", "login", "login_for_credential", "login_for_scope"]

# Seconds an ACR exchange with the registry may take.
_ACR_TIMEOUT = 30.0


def endpoints(settings: Settings) -> Endpoints:
    """Where this server's exchanges go, from its settings only (never a credential's)."""
    return Endpoints(
        aws=settings.cloud_aws_endpoint,
        google_token_uris=tuple(settings.cloud_google_token_uris),
        azure_authority=settings.cloud_azure_authority,
        ca_file=str(settings.cloud_ca_file) if settings.cloud_ca_file else None,
    )


def exchange(
    server: Server,
    address: str,
    identity: AwsIdentity | AzureIdentity | None,
    secret: str,
) -> Token:
    """A token for the registry at `address` from the identity (None: a GCR key or this
    server's Google credentials); ExchangeError saying what failed."""

    def acr_client() -> httpx.Client:
        # The registry's own exchange goes where the egress policy allows, trusted as the
        # registry is (its certs.d CA).
        try:
            return http_client(address, tls_for(server)(address), server.egress, _ACR_TIMEOUT)
        except RegistryError as e:
            raise ExchangeError("invalid", e.message) from None

    return token(identity, secret, endpoints(server.settings), address, acr_client)


def login_for_scope(
    server: Server,
    actor: Actor,
    scope: tuple[str, str, str | None, str | None],
    provider: str,
    given_server: str | None,
    kind: str,
    fields: Mapping[str, str],
    secret: str,
) -> CloudLogin:
    """login() for a new credential in `scope` (kind, cluster, project, namespace as a
    request names them), once the actor is known to be allowed to create it there: no one
    makes the server call a cloud for a credential they may not create."""
    with server.reading() as session:
        where = credentials.find_scope(session, actor, *scope)
        credentials.check_may_create(actor, where)
    return login(server, provider, given_server, kind, fields, secret)


def login_for_credential(
    server: Server,
    actor: Actor,
    credential_id: str,
    kind: str,
    fields: Mapping[str, str],
    secret: str,
) -> CloudLogin:
    """login() for a new identity of a credential the actor may edit."""
    with server.reading() as session:
        cred = credentials.get(session, actor, credential_id)
        if not credentials.may_manage(session, actor, cred):
            raise Forbidden("only an admin or the owner of the credential's project can do this")
        provider, address = cred.provider, cred.server
    return login(server, provider, address, kind, fields, secret)


def login(
    server: Server,
    provider: str,
    given_server: str | None,
    kind: str,
    fields: Mapping[str, str],
    secret: str,
) -> CloudLogin:
    """The identity a request gives, checked and exchanged for a first token; Invalid saying
    what to fix when the cloud makes none (nothing is stored then)."""
    try:
        address = providers.address(provider, given_server)
    except providers.ProviderError as e:
        raise Invalid(str(e), e.field) from None
    identity = cloud_tokens.parse(provider, address, kind, fields, secret)
    try:
        token = exchange(server, address, identity, secret)
    except ExchangeError as e:
        raise Invalid(
            f"no registry login could be made from the {kind} identity ({e.cause}): {e.message}",
            "identity",
        ) from None
    return CloudLogin(kind, cloud_tokens.shown(identity, secret), secret, token)
