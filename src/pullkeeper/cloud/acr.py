"""ACR logins made from an Azure identity: a Microsoft Entra token (azure-identity), exchanged at
the registry for a refresh token.

The identity (a service principal's secret or certificate, this pod's workload identity, or
this server's default credential chain) gets an Entra access token for Azure Resource
Manager; the registry's `/oauth2/exchange` turns it into a refresh token, which docker and the
kubelet send as the password of the null GUID until it expires, about three hours later
(https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.cloud.failures import UNTRUSTED, chain, tls_untrusted
from pullkeeper.core.cloud import ACR_USERNAME, AzureIdentity, ExchangeError, Token

if TYPE_CHECKING:
    from azure.core.credentials import SupportsTokenInfo
    from azure.core.exceptions import ClientAuthenticationError

__all__ = ["SCOPE", "token"]

# Azure Resource Manager: the audience the registry's exchange accepts.
SCOPE = "https://management.azure.com/.default"
# Seconds to connect to Entra, and to wait for each answer (azure-core waits 300).
_TIMEOUT = 30

_AADSTS = re.compile(r"AADSTS(\d+)")
# What Entra's refusals of a service principal mean and how to mend them, by AADSTS code
# (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_ENTRA_FIXES = {
    "7000215": "the client secret is wrong: give the secret's value (not its id), or create "
    "a new secret (App registrations > Certificates & secrets)",
    "7000222": "the client secret has expired: create a new one (App registrations > "
    "Certificates & secrets)",
    "700016": "the tenant has no application with this client id: check the client id and "
    "the tenant",
    "90002": "there is no such tenant: check the tenant id or domain (and that it is in this "
    "cloud)",
    "700027": "the certificate is not one of the application's: upload it to the app "
    "registration (Certificates & secrets) or give the one registered",
}


def token(
    identity: AzureIdentity,
    secret: str,
    registry: str,
    client: httpx.Client,
    endpoints: Endpoints,
) -> Token:
    """A registry login for `registry` (NAME.azurecr.io) from `identity`, whose client secret
    or certificate PEM is `secret`; ExchangeError saying what to do when none is made.

    `client` carries the exchange (the caller's egress policy and TLS trust); Entra is reached
    through azure-identity, at endpoints.azure_authority when set.
    """
    entra_token = _entra_token(identity, secret, endpoints)
    now = datetime.now(UTC)
    refresh_token = _exchange(client, registry, identity.tenant_id, entra_token)
    issued_at, expires_at = _life(refresh_token, registry, now)
    return Token(ACR_USERNAME, refresh_token, issued_at, expires_at)


# --------------------------------------------------------------------------- Entra


def _entra_token(identity: AzureIdentity, secret: str, endpoints: Endpoints) -> str:
    # azure-identity loads only when a token is made.
    from azure.core.exceptions import ClientAuthenticationError  # noqa: PLC0415

    try:
        credential = _credential(identity, secret, endpoints)
    except ValueError:
        # Its words could quote what was given: say only what to give.
        raise ExchangeError("invalid", _unusable(identity)) from None
    with credential:
        try:
            return credential.get_token_info(SCOPE).token
        except ClientAuthenticationError as e:
            raise _entra_refused(e, identity) from None


def _credential(identity: AzureIdentity, secret: str, endpoints: Endpoints) -> SupportsTokenInfo:
    from azure.identity import (  # noqa: PLC0415
        CertificateCredential,
        ClientSecretCredential,
        DefaultAzureCredential,
        WorkloadIdentityCredential,
    )

    options: dict[str, Any] = {"connection_timeout": _TIMEOUT, "read_timeout": _TIMEOUT}
    if endpoints.azure_authority:
        # Instance discovery would ask login.microsoftonline.com about an authority it does
        # not know (msal asks nothing about Microsoft's own).
        options.update(authority=endpoints.azure_authority, disable_instance_discovery=True)
    if endpoints.ca_file:
        options["connection_verify"] = endpoints.ca_file
    tenant_id, client_id = identity.tenant_id, identity.client_id
    if identity.auth == "secret":
        return ClientSecretCredential(tenant_id, client_id, secret, **options)
    if identity.auth == "certificate":
        return CertificateCredential(
            tenant_id, client_id, certificate_data=secret.encode(), **options
        )
    if identity.auth == "workload":
        # What the identity leaves out comes from the pod (AZURE_TENANT_ID, AZURE_CLIENT_ID,
        # AZURE_FEDERATED_TOKEN_FILE).
        return WorkloadIdentityCredential(
            tenant_id=tenant_id or None, client_id=client_id or None, **options
        )
    return DefaultAzureCredential(**options)


def _unusable(identity: AzureIdentity) -> str:
    if identity.auth == "certificate":
        return "the certificate cannot be read: give its PEM with the private key, unencrypted"
    if identity.auth == "workload":
        return (
            "workload identity is not set up for this server's pod: it needs the tenant, the "
            "client id and the federated token file (AZURE_FEDERATED_TOKEN_FILE)"
        )
    return (
        f"the Azure {identity.auth} login cannot be set up: check the tenant and client id, "
        "and the server's Entra authority setting"
    )


def _entra_refused(e: ClientAuthenticationError, identity: AzureIdentity) -> ExchangeError:
    """What Entra's refusal means, in words of our own: only its AADSTS code is repeated."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError  # noqa: PLC0415
    from azure.identity import CredentialUnavailableError  # noqa: PLC0415

    causes = list(chain(e))
    codes = [m[1] for cause in causes for m in _AADSTS.finditer(str(cause))]
    if codes:
        fix = _ENTRA_FIXES.get(
            codes[0], f"see https://login.microsoftonline.com/error?code={codes[0]}"
        )
        return ExchangeError(
            "invalid", f"Microsoft Entra refused the login (AADSTS{codes[0]}): {fix}"
        )
    if tls_untrusted(e):
        why = UNTRUSTED
    elif any(isinstance(c, ServiceRequestError | ServiceResponseError) for c in causes):
        why = "no connection, or no answer in time"
    elif isinstance(e, CredentialUnavailableError) or identity.auth == "default":
        return ExchangeError(
            "invalid",
            f"this server has no Azure identity of its own for the {identity.auth} login "
            "(workload identity, a managed identity, AZURE_* settings): run it with one, or "
            "give the credential a service principal",
        )
    else:
        why = "it made no token"
    return ExchangeError(
        "unreachable", f"Microsoft Entra could not be reached: {why}; tried again later"
    )


# --------------------------------------------------------------------------- the registry


def _exchange(client: httpx.Client, registry: str, tenant_id: str, entra_token: str) -> str:
    """The registry's refresh token for the Entra token."""
    form = {"grant_type": "access_token", "service": registry, "access_token": entra_token}
    if tenant_id:
        form["tenant"] = tenant_id
    try:
        response = client.post(f"https://{registry}/oauth2/exchange", data=form)
    except httpx.TimeoutException:
        raise ExchangeError(
            "unreachable", f"{registry} did not answer the token exchange in time"
        ) from None
    except httpx.ConnectError as e:
        # It says why the connection failed (the egress policy's refusal too), never what
        # was to be sent.
        raise ExchangeError(
            "unreachable", f"{registry} could not be reached for the token exchange: {e}"
        ) from None
    except httpx.HTTPError as e:
        raise ExchangeError(
            "unreachable", f"the token exchange with {registry} failed ({type(e).__name__})"
        ) from None
    status = response.status_code
    if status in (401, 403):
        raise ExchangeError(
            "denied",
            f"{registry} refused the identity (HTTP {status}): it needs the AcrPull role on the "
            "registry (az role assignment create --role AcrPull --assignee CLIENT_ID --scope "
            "REGISTRY_RESOURCE_ID)",
        )
    if status == 429 or status >= 500:
        raise ExchangeError(
            "unreachable", f"{registry} could not exchange the token now (HTTP {status})"
        )
    if status == 404:
        raise ExchangeError(
            "invalid",
            f"{registry} has no token exchange (HTTP 404): is it an Azure container registry?",
        )
    refresh_token = _json(response).get("refresh_token") if status == 200 else None
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ExchangeError(
            "invalid",
            f"{registry} answered the token exchange without a refresh token (HTTP {status})",
        )
    return refresh_token


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _life(refresh_token: str, registry: str, now: datetime) -> tuple[datetime, datetime]:
    """When the registry's refresh token was issued (iat, else now) and when it expires (exp)."""
    claims = _claims(refresh_token)
    expires_at = _instant(claims.get("exp"))
    if expires_at is None:
        raise ExchangeError(
            "invalid", f"the refresh token {registry} answered does not say when it expires"
        )
    return _instant(claims.get("iat")) or now, expires_at


def _claims(jwt: str) -> dict[str, Any]:
    """A JWT's payload, read without verifying it (the registry signs its tokens for itself,
    not for us); {} when there is none."""
    payload = jwt.split(".")[1] if jwt.count(".") == 2 else ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _instant(value: object) -> datetime | None:
    """A NumericDate claim as a time; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None
