"""Turning what a registry (or the network) answered into a cause and a sentence."""

from __future__ import annotations

import email.utils
import re
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx

from pullkeeper.core.challenge import Challenge, parse_all
from pullkeeper.core.egress import EgressPolicy
from pullkeeper.registry.egress import EgressRefused
from pullkeeper.registry.errors import Cause, RegistryError

if TYPE_CHECKING:
    from cryptography import x509

    from pullkeeper.registry.auth import Login
    from pullkeeper.registry.client import TLS

__all__ = ["api_error", "login_refused", "retry_after", "status_error", "transport_error"]

_NOT_TLS = (
    "wrong_version_number",
    "record layer failure",
    "packet length too long",
    "http request",
)


def _chain(e: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = e
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _presented(host: str, egress: EgressPolicy | None) -> x509.Certificate | None:
    """The certificate host presents, read without verifying it; None when it cannot be."""
    # pyOpenSSL and cryptography load only here, when a certificate was refused.
    from pullkeeper.registry.trust import TrustError, fetch_chain, parse_target  # noqa: PLC0415

    try:
        return fetch_chain(parse_target(host), 5.0, egress)[0]
    except TrustError:
        return None


def _trust_hint(host: str, tls: TLS) -> str:
    """How whoever made this connection comes to trust host's CA."""
    if tls.on_server:
        # No server path here: members see this message too.
        return (
            "If you trust it, an admin puts the CA that signed it in the server's "
            f"DATA/certs.d/{host}/ca.crt (on the server's host: `pullkeeper registry trust "
            f"{host} --write-certs-d DATA/certs.d`); the next check reads it"
        )
    return (
        f"If you trust it, run `pullkeeper registry trust {host}` "
        "or pass --ca-file with the CA that signed it"
    )


def transport_error(
    e: httpx.HTTPError, host: str, tls: TLS, egress: EgressPolicy | None = None
) -> RegistryError:
    chain = _chain(e)
    for cause in chain:
        if isinstance(cause, EgressRefused):
            return RegistryError(Cause.NOT_ALLOWED, cause.sentence, setting=cause.setting)
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "certificate verify failed"
            cert = _presented(host, egress)
            details: dict[str, Any] = {}
            said = f"the TLS certificate of {host} is not trusted ({reason})"
            if cert is not None:
                details = {
                    "subject": cert.subject.rfc4514_string(),
                    "issuer": cert.issuer.rfc4514_string(),
                }
                said += f"; it is issued to {details['subject']!r} by {details['issuer']!r}"
            return RegistryError(
                Cause.TLS_UNTRUSTED, f"{said}. {_trust_hint(host, tls)}", **details
            )
        if isinstance(cause, ssl.SSLError):
            lowered = str(cause).lower()
            if any(marker in lowered for marker in _NOT_TLS):
                return RegistryError(
                    Cause.TLS,
                    f"{host} does not speak TLS on this port; if it is a plain-HTTP registry, "
                    "mark it insecure (--insecure) and only over a network you trust",
                )
            if "certificate required" in lowered or "bad certificate" in lowered:
                return RegistryError(
                    Cause.TLS,
                    f"{host} wants a client certificate it accepts "
                    f"({'none was sent' if not tls.client_cert else 'it refused the one sent'}); "
                    "pass --cert and --key",
                )
            return RegistryError(Cause.TLS, f"the TLS handshake with {host} failed: {cause}")
        if isinstance(cause, socket.gaierror):
            return RegistryError(
                Cause.DNS,
                f"cannot resolve {host.rsplit(':', 1)[0]}: {cause.strerror or cause}; "
                "check the registry name and your DNS",
            )
        if isinstance(cause, ConnectionRefusedError):
            return RegistryError(
                Cause.REFUSED,
                f"{host} refused the connection; is the registry running on that port?",
            )
    if isinstance(e, httpx.TimeoutException):
        return RegistryError(
            Cause.TIMEOUT, f"{host} did not answer in time ({type(e).__name__}); try again later"
        )
    # What a non-registry service sent is never repeated: only that it was not HTTP.
    if isinstance(e, httpx.RemoteProtocolError) and not tls.insecure:
        return RegistryError(Cause.PROTOCOL, f"{host} answered something that is not HTTP")
    return RegistryError(Cause.PROTOCOL, f"talking to {host} failed ({type(e).__name__})")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait (Retry-After: seconds or an HTTP date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


_REGISTRY_CODE = re.compile(r"[A-Z][A-Z_]{1,39}")  # the distribution spec's error codes
_OAUTH_CODE = re.compile(r"[a-z][a-z_]{1,39}")  # RFC 6749's error codes
_MEDIA_TYPE = re.compile(r"[\w.+-]{1,60}/[\w.+-]{1,60}")


def _clean(text: object) -> str:
    """A registry's message as one short printable line."""
    line = "".join(c if c.isprintable() else " " for c in str(text)).strip()
    return line if len(line) <= 300 else line[:299] + "…"


def _said(response: httpx.Response) -> str:
    """The registry's own words: its first error's code and message, or a token server's
    OAuth2 error. Any other answer (some other service's) is summarised, never repeated."""
    errors = _errors(response)
    if errors and _REGISTRY_CODE.fullmatch(str(errors[0].get("code", ""))):
        return _clean(f"{errors[0]['code']}: {errors[0].get('message', '')}".strip(": "))
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and _OAUTH_CODE.fullmatch(str(doc.get("error", ""))):
        described = doc.get("error_description")
        return _clean(
            f"{doc['error']}: {described}" if isinstance(described, str) else doc["error"]
        )
    return _summary(response)


def _summary(response: httpx.Response) -> str:
    """What an answer was, without what it said: status and content type."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    kind = media if _MEDIA_TYPE.fullmatch(media) else ("no body" if not response.content else "")
    return f"HTTP {response.status_code}" + (f", {kind}" if kind else "")


def _expired(response: httpx.Response) -> bool:
    # Read, not repeated: token servers say "expired" in JSON fields of their own.
    if "json" not in response.headers.get("content-type", "") and not _errors(response):
        return False
    try:
        return "expired" in response.text.lower()
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return False


def _rate_limited(response: httpx.Response, host: str) -> RegistryError:
    details: dict[str, Any] = {}
    said = f"{host} is rate limiting requests"
    limit = response.headers.get("ratelimit-limit", "")
    if limit:
        count, _, window = limit.partition(";w=")
        details["limit"] = limit
        per = f" per {int(window) // 3600} h" if window.isdigit() and int(window) >= 3600 else ""
        said = f"{host}'s pull rate limit is reached ({count} pulls{per}"
        remaining = response.headers.get("ratelimit-remaining", "")
        said += f", {remaining.split(';')[0]} left)" if remaining else ")"
    wait = retry_after(response)
    if wait is not None:
        details["retry_after"] = wait
    hint = f"; retry in {int(wait)} s" if wait is not None else "; wait before retrying"
    if host == "registry-1.docker.io":
        hint += " or log in with a Docker Hub account, which has a higher limit"
    return RegistryError(Cause.RATE_LIMITED, said + hint, **details)


def status_error(response: httpx.Response, host: str, what: str) -> RegistryError:
    if response.status_code == 429:
        return _rate_limited(response, host)
    if response.status_code >= 500:
        return RegistryError(
            Cause.SERVER_ERROR,
            f"{host} failed on {what} ({_said(response)}); try again later",
            status=response.status_code,
        )
    return RegistryError(
        Cause.PROTOCOL,
        f"{host} answered {what} with HTTP {response.status_code}: {_said(response)}",
        status=response.status_code,
    )


def login_refused(response: httpx.Response, host: str, login: Login) -> RegistryError:
    """The token server (or the registry, for Basic) refused the login."""
    if response.status_code == 429 or response.status_code >= 500:
        return status_error(response, host, "the login")
    if login.identity_token:
        return RegistryError(
            Cause.EXPIRED,
            f"{host} refused the identity token ({_said(response)}): it expired or was revoked; "
            "log in again to get a new one",
        )
    if _expired(response):
        return RegistryError(
            Cause.EXPIRED,
            f"{host} says the credential has expired ({_said(response)}); renew it",
        )
    if login.anonymous:
        return RegistryError(Cause.NO_CREDENTIALS, f"{host} requires a login and none was given")
    return RegistryError(
        Cause.UNAUTHORIZED,
        f"{host} refused the login of {login.username!r}: wrong user name or password/token",
    )


def api_error(
    response: httpx.Response,
    host: str,
    repository: str,
    ref: str,
    what: str,
    login: Login,
    challenge: Challenge | None,
) -> RegistryError:
    status = response.status_code
    target = f"{repository}:{ref}" if ref and not ref.startswith("sha") else repository
    if ref.startswith("sha"):
        target = f"{repository}@{ref}"
    if status == 401:
        if _expired(response):
            return login_refused(response, host, login)
        found = parse_all(response.headers.get_list("www-authenticate"))
        insufficient = any(c.get("error") == "insufficient_scope" for c in found)
        if login.anonymous:
            return RegistryError(
                Cause.NO_CREDENTIALS,
                f"{host} requires a login to read {repository} and none was given",
            )
        if insufficient or (challenge is not None and challenge.scheme == "bearer"):
            return RegistryError(
                Cause.DENIED,
                f"the login of {login.username or 'this credential'!r} is valid on {host} but "
                f"has no access to {repository} (or {repository} does not exist)",
            )
        return login_refused(response, host, login)
    if status == 403:
        if _expired(response):
            return login_refused(response, host, login)
        return RegistryError(
            Cause.DENIED,
            f"{host} denies {'anonymous access' if login.anonymous else repr(login.username)} "
            f"to {repository}: {_said(response)}",
        )
    if status == 404:
        codes = {str(e.get("code", "")) for e in _errors(response)}
        if "NAME_UNKNOWN" in codes or what == "repository":
            said = f"the repository {repository} does not exist on {host}"
        elif what == "manifest":
            said = f"{target} does not exist on {host} (no such tag or digest)"
        else:
            said = f"{host} has no {what} {ref} in {repository}"
        return RegistryError(Cause.NOT_FOUND, said)
    return status_error(response, host, f"the {what} request for {target}")
