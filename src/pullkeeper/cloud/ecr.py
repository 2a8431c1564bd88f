"""ECR logins from an AWS identity: boto3's GetAuthorizationToken, after AssumeRole when the
identity names a role.

The token ECR answers is base64 of `AWS:<password>`, good for 12 hours for every registry
the identity may pull from. AWS's errors are turned into what to do about them; none
repeats a key.
"""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.core.cloud import AwsIdentity, ExchangeError, Token

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError
    from botocore.session import Session as BotocoreSession

__all__ = ["token"]

_SESSION_NAME = "pullkeeper"  # what CloudTrail shows as the assumed role's session

# One botocore session makes the clients of every exchange given keys: it reads AWS's
# service models once (a session of its own per exchange spends some 60 ms of CPU on them).
# Clients are made with the keys given, never the session's own, and one at a time (a
# session is not safe to share between threads; the clients it makes are).
_shared: BotocoreSession | None = None
_shared_lock = threading.Lock()


def token(identity: AwsIdentity, secret_access_key: str, endpoints: Endpoints) -> Token:
    """A login for the identity's registry, or ExchangeError saying what failed."""
    # Not at the top: boto3 takes a good part of a second to import.
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=15,
        user_agent_extra=_SESSION_NAME,
    )
    options: dict[str, Any] = {"endpoint_url": endpoints.aws, "config": config}
    if endpoints.ca_file:
        options["verify"] = endpoints.ca_file
    options["region_name"] = identity.region
    keys: dict[str, str] | None = None
    if identity.access_key_id:
        keys = {
            "aws_access_key_id": identity.access_key_id,
            "aws_secret_access_key": secret_access_key,
        }
    step = "sts:AssumeRole" if identity.role_arn else "ecr:GetAuthorizationToken"
    try:
        if identity.role_arn:
            assume: dict[str, Any] = {
                "RoleArn": identity.role_arn,
                "RoleSessionName": _SESSION_NAME,
            }
            if identity.external_id:
                assume["ExternalId"] = identity.external_id
            assumed = _client("sts", keys, options).assume_role(**assume)["Credentials"]
            keys = {
                "aws_access_key_id": assumed["AccessKeyId"],
                "aws_secret_access_key": assumed["SecretAccessKey"],
                "aws_session_token": assumed["SessionToken"],
            }
            step = "ecr:GetAuthorizationToken"
        issued_at = datetime.now(UTC)
        answer = _client("ecr", keys, options).get_authorization_token(
            registryIds=[identity.registry_id]
        )
    except (NoCredentialsError, PartialCredentialsError):
        raise ExchangeError(
            "invalid",
            "no AWS credentials in this server's environment: give the credential an access "
            "key, or run the server with an AWS identity (an IAM role for its service "
            "account, an instance profile, AWS_* environment variables)",
        ) from None
    except ClientError as e:
        raise _refused(e, step, identity) from None
    except BotoCoreError as e:  # no connection, a timeout, an unknown endpoint
        raise ExchangeError(
            "unreachable",
            f"could not reach AWS for {step} in region {identity.region} "
            f"({type(e).__name__}): check the region and this server's network",
        ) from None
    return _login(answer, issued_at, identity)


def _client(service: str, keys: dict[str, str] | None, options: dict[str, Any]) -> BaseClient:
    """A client signing with `keys`; with none, with this server's own AWS credentials (the
    SDK's default chain, read afresh: a session of its own)."""
    import boto3  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    if keys is None:
        return boto3.session.Session().client(service, **options)
    global _shared  # noqa: PLW0603 - made once, on the first exchange
    with _shared_lock:
        if _shared is None:
            _shared = botocore.session.get_session()
        return _shared.create_client(service, **keys, **options)


def _login(answer: dict[str, Any], issued_at: datetime, identity: AwsIdentity) -> Token:
    found = answer.get("authorizationData") or []
    if not found:
        raise ExchangeError(
            "invalid", f"ECR gave no login for registry {identity.registry_id}: check its id"
        )
    data = found[0]
    try:
        decoded = base64.b64decode(data["authorizationToken"], validate=True).decode()
    except (KeyError, binascii.Error, UnicodeDecodeError):
        raise ExchangeError("invalid", "ECR's answer holds no readable token") from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise ExchangeError("invalid", "ECR's token is not USER:PASSWORD")
    expires_at = data.get("expiresAt")
    if not isinstance(expires_at, datetime):
        raise ExchangeError("invalid", "ECR's answer gives no expiry for its token")
    expires_at = expires_at.astimezone(UTC)
    if expires_at <= issued_at:
        raise ExchangeError(
            "clock",
            f"ECR's token expires at {expires_at:%Y-%m-%d %H:%M:%S} UTC, before this "
            "server's clock says it is now: check this server's time (NTP)",
        )
    return Token(username, password, issued_at, expires_at)


# AWS error codes (ECR speaks JSON, STS XML: the names differ) and what they mean.
_DENIED = {"AccessDeniedException", "AccessDenied"}
_WRONG_KEY = {"UnrecognizedClientException", "InvalidClientTokenId"}
_WRONG_SECRET = {"InvalidSignatureException", "SignatureDoesNotMatch"}
_CLOCK = {"RequestExpired", "RequestTimeTooSkewed"}


def _refused(e: ClientError, step: str, identity: AwsIdentity) -> ExchangeError:
    error = e.response.get("Error", {})
    code, said = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in _CLOCK or "Signature expired" in said:
        return ExchangeError(
            "clock",
            "AWS refused the request's time: this server's clock is out of step (check NTP)",
        )
    if code in _DENIED:
        if step == "sts:AssumeRole":
            return ExchangeError(
                "denied",
                f"the identity may not assume {identity.role_arn}: allow sts:AssumeRole on it, "
                "and check the role's trust policy (and the external id it expects)",
            )
        return ExchangeError(
            "denied",
            "the identity may not call ecr:GetAuthorizationToken: add that action to its "
            "IAM policy (and ecr:BatchGetImage, ecr:GetDownloadUrlForLayer to pull)",
        )
    if code in _WRONG_KEY:
        key = identity.access_key_id or "(from this server's environment)"
        return ExchangeError(
            "invalid", f"AWS does not know the access key id {key}: check it, or make a new key"
        )
    if code in _WRONG_SECRET:
        return ExchangeError(
            "invalid", "the secret access key does not match its access key id: give it again"
        )
    if code in ("InvalidParameterException", "RegistryNotFoundException"):
        return ExchangeError(
            "invalid",
            f"ECR knows no registry {identity.registry_id} in {identity.region}: check the "
            "address's account and region",
        )
    return ExchangeError(
        "unreachable" if code.startswith(("5", "Throttl", "ServiceUnavailable")) else "invalid",
        f"AWS refused {step}: {code or 'an error'}",
    )
