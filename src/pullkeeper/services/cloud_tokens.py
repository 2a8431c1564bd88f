"""Cloud identities kept on credentials and the registry tokens made from them: what a
request gives checked, what is shown of it, the token kept as the credential's password
with its refresh schedule, a failed refresh recorded. The exchanges themselves are in
services/cloud_exchange.py.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.core import cloud
from pullkeeper.core.cloud import (
    IDENTITY_KINDS,
    AwsIdentity,
    AzureIdentity,
    CloudLogin,
    ExchangeError,
    IdentityError,
    Token,
)
from pullkeeper.services.errors import Invalid
from pullkeeper.services.keys import identity_bound
from pullkeeper.store.models import Credential
from pullkeeper.store.vault import Vault

__all__ = [
    "FIELDS",
    "JITTER",
    "LEAD",
    "SECRET_NAMES",
    "describe",
    "expiries",
    "failed",
    "parse",
    "renewed",
    "secret_of",
    "shown",
    "stored",
]

# What each kind of identity is given besides its secret (ECR's account and region come
# from the registry address; a GCR key holds what it says of itself).
FIELDS: dict[str, tuple[str, ...]] = {
    "aws": ("access_key_id", "role_arn", "external_id"),
    "gcp": (),
    "azure": ("auth", "tenant_id", "client_id"),
}
# Spreads the refreshes of tokens made at once (core.cloud.refresh_at); no secret.
JITTER = random.Random()  # noqa: S311

# How much sooner than its jittered time a token is due: the refresher looks every
# token_refresh_poll_seconds (30 by default) and may have a queue of exchanges to make, and
# the new token is to be stored by half the old one's life all the same.
LEAD = timedelta(minutes=1)

# The secret each kind keeps, as a form names it.
SECRET_NAMES = {
    "aws": "secret access key",
    "gcp": "service-account JSON key",
    "azure": "client secret or certificate",
}


def parse(
    provider: str, address: str, kind: str, fields: Mapping[str, str], secret: str
) -> AwsIdentity | AzureIdentity | None:
    """The identity a credential of `provider` for `address` is given (None: a GCR one,
    whose key is the secret itself), or Invalid naming the field to fix."""
    if IDENTITY_KINDS.get(provider) != kind:
        raise Invalid(
            "only Amazon ECR (aws), Google GCR / Artifact Registry (gcp) and Azure ACR (azure) "
            "credentials hold a cloud identity, each its own cloud's"
            + (
                f"; {provider} takes {IDENTITY_KINDS[provider]}"
                if provider in IDENTITY_KINDS
                else ""
            ),
            "identity.kind",
        )
    unknown = sorted(set(fields) - set(FIELDS[kind]))
    if unknown:
        takes = ", ".join(FIELDS[kind]) or "nothing but its key"
        raise Invalid(
            f"an {kind} identity has no {unknown[0]}: it takes {takes}", f"identity.{unknown[0]}"
        )
    try:
        if kind == "aws":
            return cloud.aws_identity(address, secret_access_key=secret, **fields)
        if kind == "azure":
            return cloud.azure_identity(secret=secret, **{"auth": "secret", **fields})
        if secret:
            cloud.gcp_key(secret)
        return None
    except IdentityError as e:
        # The request names the secret one way for every kind.
        raise Invalid(e.message, e.field_as("identity.secret", "identity.")) from None


def shown(identity: AwsIdentity | AzureIdentity | None, secret: str) -> dict[str, str]:
    """What is kept and shown of an identity: never its secret (a GCR key's own account and
    key id, which are not)."""
    if isinstance(identity, AwsIdentity):
        shown = {
            "access_key_id": identity.access_key_id,
            "role_arn": identity.role_arn,
            "external_id": identity.external_id,
        }
    elif isinstance(identity, AzureIdentity):
        shown = {
            "auth": identity.auth,
            "tenant_id": identity.tenant_id,
            "client_id": identity.client_id,
        }
    elif secret:
        key = cloud.gcp_key(secret)
        shown = {"client_email": key.client_email, "private_key_id": key.private_key_id}
    else:
        shown = {}
    return {k: v for k, v in shown.items() if v}


def _identity_of(cred: Credential) -> AwsIdentity | AzureIdentity | None:
    shown = cred.identity or {}
    if cred.identity_kind == "aws":
        registry = cloud.aws_identity(cred.server)
        return AwsIdentity(
            registry.registry_id,
            registry.region,
            shown.get("access_key_id", ""),
            shown.get("role_arn", ""),
            shown.get("external_id", ""),
        )
    if cred.identity_kind == "azure":
        return AzureIdentity(
            shown.get("auth", "secret"), shown.get("tenant_id", ""), shown.get("client_id", "")
        )
    return None


def secret_of(vault: Vault, cred: Credential) -> tuple[AwsIdentity | AzureIdentity | None, str]:
    """A stored credential's identity and its secret (decrypted), for an exchange."""
    secret = ""
    if cred.identity_blob:
        secret = vault.decrypt(
            cred.identity_key_id or "", cred.identity_blob, identity_bound(cred.id)
        )
    return _identity_of(cred), secret


def stored(
    session: Session,
    vault: Vault,
    cred: Credential,
    given: CloudLogin,
    rng: random.Random = JITTER,
) -> None:
    """The identity and its first token kept on the credential (flushed, so it has its id)."""
    cred.identity_kind = given.kind
    cred.identity = dict(given.identity)
    if given.secret:
        cred.identity_key_id, cred.identity_blob = vault.encrypt(
            session, given.secret, identity_bound(cred.id)
        )
    else:
        cred.identity_key_id, cred.identity_blob = None, None
    renewed(session, vault, cred, given.token, rng)


def renewed(
    session: Session,
    vault: Vault,
    cred: Credential,
    token: Token,
    rng: random.Random = JITTER,
) -> bool:
    """A new token kept on the credential, and its next refresh set; whether its password
    changed (a token the cloud gave again changes nothing delivered)."""
    changed = not cred.secret_blob or (
        vault.decrypt(cred.secret_key_id, cred.secret_blob, cred.id) != token.password
        or cred.username != token.username
    )
    if changed:
        cred.username = token.username
        cred.secret_key_id, cred.secret_blob = vault.encrypt(session, token.password, cred.id)
    cred.token_issued_at = token.issued_at
    cred.token_expires_at = token.expires_at
    cred.token_refresh_at = cloud.refresh_at(token, rng, LEAD)
    cred.token_error = cred.token_error_cause = None
    cred.token_failures = 0
    return changed


def failed(
    cred: Credential, error: ExchangeError, now: datetime, rng: random.Random = JITTER
) -> None:
    """A refresh that made no token: said on the credential, and tried again later."""
    cred.token_failures = (cred.token_failures or 0) + 1
    cred.token_error, cred.token_error_cause = error.message, error.cause
    cred.token_refresh_at = cloud.retry_at(now, cred.token_failures, cred.token_expires_at, rng)


def describe(row: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """What a listing shows of a credential's identity and token (None: a static login)."""
    kind = row["identity_kind"]
    if not kind:
        return None
    issued, expires = row["token_issued_at"], row["token_expires_at"]
    state = None
    if issued is not None and expires is not None:
        state = cloud.token_state(now, issued, expires, bool(row["token_failures"])).word
    return {
        "kind": kind,
        **(row["identity"] or {}),
        "token": {
            "state": state,
            "issued_at": issued.isoformat() if issued else None,
            "expires_at": expires.isoformat() if expires else None,
            "refresh_at": row["token_refresh_at"].isoformat() if row["token_refresh_at"] else None,
            "failures": row["token_failures"],
            "last_error": None
            if row["token_error"] is None
            else {"cause": row["token_error_cause"], "message": row["token_error"]},
        },
    }


def expiries(session: Session) -> list[tuple[str, str, datetime]]:
    """Each credential's token expiry (id, name, when), of those holding a cloud identity."""
    stmt = select(Credential.id, Credential.name, Credential.token_expires_at).where(
        Credential.identity_kind.is_not(None), Credential.token_expires_at.is_not(None)
    )
    return [(i, n, at) for i, n, at in session.execute(stmt) if at is not None]
