"""GCR and Artifact Registry logins made from a Google identity, with google-auth.

A service-account JSON key is exchanged at its token URI for an OAuth 2.0 access token (the
JWT-bearer grant: the key signs an assertion, the key itself never leaves this server); with
no key, this server's own Google credentials are used (workload identity, the metadata
server, GOOGLE_APPLICATION_CREDENTIALS). The registry takes the access token as the password
of the user `oauth2accesstoken` until it expires, an hour later.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.cloud.failures import UNTRUSTED, chain, tls_untrusted
from pullkeeper.core.cloud import GCR_USERNAME, ExchangeError, IdentityError, Token, gcp_key

if TYPE_CHECKING:
    from google.auth import credentials as google_credentials
    from google.auth import exceptions as google_exceptions

__all__ = ["SCOPE", "token"]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Seconds one request to Google may take (google-auth's own transport waits 120).
_TIMEOUT = 30

_NEW_KEY = (
    "create a new key for the service account (IAM > Service accounts > Keys > Add key > "
    "JSON) and give it to the credential"
)


def token(key_json: str | None, endpoints: Endpoints) -> Token:
    """A registry login from the service-account key `key_json` (None: this server's own
    Google credentials); ExchangeError saying what to do when Google makes none."""
    # google-auth loads only when a token is made.
    import google.auth.exceptions  # noqa: PLC0415

    credentials = _credentials(key_json, endpoints)
    trust = ssl.create_default_context(cafile=endpoints.ca_file) if endpoints.ca_file else True
    with httpx.Client(verify=trust) as client:
        transport = _Transport(client)
        issued_at = datetime.now(UTC)
        try:
            # google-auth's methods carry no annotations.
            credentials.refresh(transport)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as e:
            raise _refused(e, transport.status) from None
        except google.auth.exceptions.TransportError as e:
            raise _unreachable(e) from None
    if not credentials.token or credentials.expiry is None:
        raise ExchangeError("invalid", "Google answered without an access token or its expiry")
    # google-auth keeps expiry as a naive datetime in UTC.
    return Token(GCR_USERNAME, credentials.token, issued_at, credentials.expiry.replace(tzinfo=UTC))


def _credentials(key_json: str | None, endpoints: Endpoints) -> google_credentials.Credentials:
    import google.auth  # noqa: PLC0415
    from google.oauth2 import service_account  # noqa: PLC0415

    if key_json is None:
        try:
            found, _project = google.auth.default(scopes=[SCOPE])
        except google.auth.exceptions.DefaultCredentialsError:
            raise ExchangeError(
                "invalid",
                "this server has no Google credentials of its own (workload identity, the "
                "metadata server, GOOGLE_APPLICATION_CREDENTIALS): run it with some, or give "
                "the credential a service-account key",
            ) from None
        return found
    try:
        key = gcp_key(key_json)
    except IdentityError as e:
        raise ExchangeError("invalid", e.message) from None
    if key.token_uri not in endpoints.google_token_uris:
        raise ExchangeError(
            "invalid",
            f"the key names the token endpoint {key.token_uri}, which this server does not "
            f"send keys to (only to {', '.join(endpoints.google_token_uris)}): give a key "
            "Google made, or have the endpoint added to the server's settings",
        )
    info = {**json.loads(key_json), "token_uri": key.token_uri}
    try:
        made: google_credentials.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
        )
    except ValueError:
        # Its words could quote the key: say only whose key it is.
        raise ExchangeError(
            "invalid", f"the private key of {key.client_email} cannot be read: {_NEW_KEY}"
        ) from None
    return made


@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer as google-auth reads one (google.auth.transport.Response)."""

    status: int
    headers: Mapping[str, str]
    data: bytes


class _Transport:
    """What google-auth sends its requests through (google.auth.transport.Request), on httpx,
    keeping the last answer's status (the errors google-auth raises do not say it). Its own
    transport, on requests, would log each request's body at DEBUG, the signed assertion
    with it."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self.status: int | None = None

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _TIMEOUT,
        **kwargs: Any,  # requests' own options (verify, cert): the client has its own
    ) -> _Answer:
        from google.auth import exceptions  # noqa: PLC0415

        self.status = None
        try:
            response = self._client.request(
                method, url, content=body, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as e:
            # The error google-auth expects of a transport (its constructor is unannotated).
            raise exceptions.TransportError(e) from e  # type: ignore[no-untyped-call]
        self.status = response.status_code
        return _Answer(response.status_code, response.headers, response.content)


def _refused(e: google_exceptions.RefreshError, status: int | None) -> ExchangeError:
    """What Google's refusal means and what to do about it, in words of our own: only the
    OAuth error code of the answer is repeated."""
    if status is None:  # no answer: the metadata server's credentials wrap the failure
        return _unreachable(e)
    answer = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], dict) else {}
    error, description = (_text(answer.get(name)) for name in ("error", "error_description"))
    said = f" ({error})" if error.isidentifier() else ""
    if "short-lived token" in description or "reasonable timeframe" in description:
        return ExchangeError(
            "clock",
            "Google refused the key's assertion as not made now: this server's clock is out "
            "of step; check that it keeps time (NTP)",
        )
    if e.retryable or status >= 500:
        return ExchangeError(
            "unreachable", f"Google could not make a token now{said}; it is tried again later"
        )
    if status == 403 or error == "access_denied" or "permission" in description.lower():
        return ExchangeError(
            "denied",
            f"Google denied the service account a token{said}: grant it the permission to "
            "read the registry (roles/artifactregistry.reader) and check that it is enabled",
        )
    if error in ("invalid_grant", "invalid_client"):
        return ExchangeError(
            "invalid",
            f"Google does not accept the key{said}: it was deleted, or it is not the service "
            f"account's; {_NEW_KEY}",
        )
    return ExchangeError("invalid", f"Google refused to make a token{said}")


def _unreachable(e: google_exceptions.GoogleAuthError) -> ExchangeError:
    failed = next((c for c in chain(e) if isinstance(c, httpx.HTTPError)), None)
    where = "Google"
    if isinstance(failed, httpx.RequestError):
        where = str(failed.request.url)
    if tls_untrusted(e):
        why = UNTRUSTED
    elif isinstance(failed, httpx.TimeoutException):
        why = "it did not answer in time"
    else:
        why = "no connection"
    return ExchangeError("unreachable", f"{where} could not be reached: {why}; tried again later")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
