"""Cloud identities a credential can hold, the registry tokens they are exchanged for, and
when a token is refreshed.

An ECR, GCR/Artifact Registry or ACR credential may hold a cloud identity instead of a
static password. pullkeeper exchanges it for a short-lived registry login (ECR: `AWS` and a
12-hour token; GCR: `oauth2accesstoken` and a 1-hour access token; ACR: the null GUID and a
refresh token of about 3 hours) and makes a new one before half the old one's life is gone.
What a user gives is checked here; the exchanges themselves are the adapters' (cloud/).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = [
    "ACR_USERNAME",
    "AZURE_AUTH",
    "ECR_USERNAME",
    "GCR_USERNAME",
    "GOOGLE_TOKEN_URI",
    "IDENTITY_KINDS",
    "RETRY_FIRST",
    "RETRY_MOST",
    "AwsIdentity",
    "AzureIdentity",
    "CloudLogin",
    "ExchangeError",
    "GcpKey",
    "IdentityError",
    "Token",
    "TokenState",
    "aws_identity",
    "azure_identity",
    "gcp_key",
    "refresh_at",
    "retry_at",
    "token_state",
]

# The identity each cloud provider's credentials may hold instead of a password.
IDENTITY_KINDS = {"ecr": "aws", "gcr": "gcp", "acr": "azure"}
ECR_USERNAME = "AWS"
GCR_USERNAME = "oauth2accesstoken"
ACR_USERNAME = "00000000-0000-0000-0000-000000000000"


# The fields the checks below name an identity's secret by, each cloud's its own way.
_SECRET_FIELDS = frozenset({"secret_access_key", "key", "secret"})


class IdentityError(ValueError):
    """A cloud identity that cannot be used; `field` names the input to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def field_as(self, secret: str, prefix: str = "") -> str:
        """The field as an input names it: `secret` for the identity's secret, the
        registry's `server` as it is, any other after `prefix`."""
        if self.field in _SECRET_FIELDS:
            return secret
        return self.field if self.field == "server" else prefix + self.field


class ExchangeError(Exception):
    """An identity the cloud did not exchange for a token.

    `cause` is one word a program can act on: denied (the identity lacks a permission),
    invalid (wrong keys, an unknown region or registry), clock (this host's clock is out of
    step), unreachable (no answer; tried again later). `message` says what to do. Neither
    ever holds a secret.
    """

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message

    @property
    def retry(self) -> bool:
        """Whether trying again without a change can succeed."""
        return self.cause in ("unreachable", "clock")


@dataclass(frozen=True, slots=True)
class Token:
    """A registry login made from a cloud identity, and its life."""

    username: str
    password: str
    issued_at: datetime
    expires_at: datetime

    @property
    def lifetime(self) -> timedelta:
        return self.expires_at - self.issued_at

    def __repr__(self) -> str:  # never the token itself
        return f"Token({self.username!r}, issued {self.issued_at}, expires {self.expires_at})"


@dataclass(frozen=True, slots=True)
class CloudLogin:
    """A cloud identity checked and exchanged once, ready to be stored with its credential:
    its kind (aws, gcp, azure), what is shown of it (never its secret), the secret kept
    encrypted apart, and the first token made from it."""

    kind: str
    identity: dict[str, str]
    secret: str = field(repr=False)
    token: Token


# --------------------------------------------------------------------------- AWS (ECR)

_ECR_HOST = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?P<fips>-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)
_ACCESS_KEY_ID = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}")
_ROLE_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")


@dataclass(frozen=True, slots=True)
class AwsIdentity:
    """What an ECR credential logs in with: its registry (account and region, from the
    server address), an access key id (empty: the SDK's default chain of this server's
    environment, a web identity token file as with IRSA, instance metadata), and a role
    to assume with it, optionally with an external id."""

    registry_id: str
    region: str
    access_key_id: str = ""
    role_arn: str = ""
    external_id: str = ""

    @property
    def default_chain(self) -> bool:
        return not self.access_key_id


def aws_identity(
    server: str,
    access_key_id: str = "",
    secret_access_key: str = "",
    role_arn: str = "",
    external_id: str = "",
) -> AwsIdentity:
    """The AWS identity of an ECR credential for `server`, or IdentityError saying what to fix.
    The secret access key is checked for presence only; it is stored apart."""
    m = _ECR_HOST.fullmatch(server)
    if m is None:
        raise IdentityError("server", f"{server!r} is not ACCOUNT.dkr.ecr.REGION.amazonaws.com")
    if access_key_id and not _ACCESS_KEY_ID.fullmatch(access_key_id):
        raise IdentityError(
            "access_key_id",
            "an AWS access key id is 20 characters starting with AKIA (or ASIA), "
            "upper-case letters and digits",
        )
    if access_key_id and not secret_access_key:
        raise IdentityError("secret_access_key", "the access key's secret is required")
    if secret_access_key and not access_key_id:
        raise IdentityError("access_key_id", "a secret access key needs its access key id")
    if role_arn and not _ROLE_ARN.fullmatch(role_arn):
        raise IdentityError(
            "role_arn", "a role ARN reads arn:aws:iam::ACCOUNT:role/NAME (12-digit account)"
        )
    if external_id and not role_arn:
        raise IdentityError("external_id", "an external id is given with the role it is for")
    if external_id and not _EXTERNAL_ID.fullmatch(external_id):
        raise IdentityError(
            "external_id", "an external id is 2 to 1224 letters, digits or +=,.@:/-"
        )
    return AwsIdentity(m["account"], m["region"], access_key_id, role_arn, external_id)


# --------------------------------------------------------------------------- Google (GCR)

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


@dataclass(frozen=True, slots=True)
class GcpKey:
    """What a service-account JSON key says of itself (never its private key)."""

    client_email: str
    private_key_id: str
    project_id: str
    token_uri: str


def gcp_key(text: str) -> GcpKey:
    """The service-account key in `text`, or IdentityError saying why it is not one."""
    try:
        key = json.loads(text)
    except (ValueError, RecursionError):
        key = None
    if not isinstance(key, dict):
        raise IdentityError("key", "the key is not JSON: give the service account's JSON key file")
    if key.get("type") != "service_account":
        kind = key.get("type")
        what = f"a {kind!r} file" if isinstance(kind, str) else "not a key file"
        raise IdentityError(
            "key",
            f"this is {what}, not a service-account key: create a key for the service "
            "account (IAM > Service accounts > Keys > Add key > JSON)",
        )
    for name in ("client_email", "private_key", "private_key_id"):
        if not isinstance(key.get(name), str) or not key[name]:
            raise IdentityError("key", f"the service-account key has no {name}")
    token_uri = key.get("token_uri") or GOOGLE_TOKEN_URI
    if not isinstance(token_uri, str):
        raise IdentityError("key", "the service-account key's token_uri is not a URL")
    project = key.get("project_id")
    project = project if isinstance(project, str) else ""
    return GcpKey(key["client_email"], key["private_key_id"], project, token_uri)


# --------------------------------------------------------------------------- Azure (ACR)

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_TENANT_DOMAIN = re.compile(r"[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+")
AZURE_AUTH = ("secret", "certificate", "workload", "default")


@dataclass(frozen=True, slots=True)
class AzureIdentity:
    """What an ACR credential logs in with: a service principal (tenant, client id, and a
    client secret or certificate stored apart), workload identity (the federated token
    file of this server's pod), or the default credential chain of this server."""

    auth: str
    tenant_id: str = ""
    client_id: str = ""


def azure_identity(
    auth: str, tenant_id: str = "", client_id: str = "", secret: str = ""
) -> AzureIdentity:
    """The Azure identity of an ACR credential, or IdentityError saying what to fix; `secret`
    is the client secret or the certificate's PEM (private key included), checked for
    presence only."""
    if auth not in AZURE_AUTH:
        raise IdentityError("auth", "the Azure login is one of: " + ", ".join(AZURE_AUTH))
    if auth in ("secret", "certificate"):
        if not (_GUID.fullmatch(tenant_id) or _TENANT_DOMAIN.fullmatch(tenant_id)):
            raise IdentityError(
                "tenant_id", "the tenant is its id (a GUID) or its domain (contoso.onmicrosoft.com)"
            )
        if not _GUID.fullmatch(client_id):
            raise IdentityError("client_id", "the client id is the app registration's GUID")
        if not secret:
            what = "client secret" if auth == "secret" else "certificate (PEM with its key)"
            raise IdentityError("secret", f"the service principal's {what} is required")
        if auth == "certificate" and "PRIVATE KEY-----" not in secret:
            raise IdentityError(
                "secret", "the certificate must be PEM with its private key in the same file"
            )
    elif secret:
        raise IdentityError("secret", f"{auth} login takes no secret: it uses this server's")
    return AzureIdentity(auth, tenant_id, client_id)


# --------------------------------------------------------------------------- refreshing

# A failed exchange is tried again after RETRY_FIRST, doubling up to RETRY_MOST.
RETRY_FIRST = timedelta(seconds=30)
RETRY_MOST = timedelta(minutes=15)


def refresh_at(token: Token, rng: random.Random, lead: timedelta = timedelta(0)) -> datetime:
    """When to make the next token: at or before half this one's life (between 40 and 50
    per cent of it, so many credentials made at once do not all refresh at once), less
    `lead` (at most a tenth of the life): time for a refresher that looks now and then, and
    its queue of exchanges, to have the new token stored by half the old one's life."""
    at: datetime = token.issued_at + token.lifetime * rng.uniform(0.4, 0.5)
    return at - min(lead, token.lifetime / 10)


def retry_at(
    now: datetime, failures: int, expires_at: datetime | None, rng: random.Random
) -> datetime:
    """When to try again after `failures` failed exchanges in a row: backing off from
    RETRY_FIRST to RETRY_MOST with a fifth of jitter, and once more before the current token
    expires when that comes sooner."""
    backoff: timedelta = RETRY_FIRST * 2 ** max(failures - 1, 0)
    at = now + min(backoff, RETRY_MOST) * rng.uniform(0.8, 1.2)
    if expires_at is not None and now < expires_at < at:
        return now + (expires_at - now) / 2
    return at


@dataclass(frozen=True, slots=True)
class TokenState:
    """Where a credential's token stands: `word` is valid, alert (the last refresh failed and
    less than a quarter of the token's life is left) or expired."""

    word: str
    expires_at: datetime


def token_state(
    now: datetime, issued_at: datetime, expires_at: datetime, failing: bool
) -> TokenState:
    if now >= expires_at:
        return TokenState("expired", expires_at)
    if failing and expires_at - now < (expires_at - issued_at) / 4:
        return TokenState("alert", expires_at)
    return TokenState("valid", expires_at)
