"""Why talking to a registry failed, in words a person can act on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["Cause", "RegistryError"]


class Cause(StrEnum):
    DNS = "dns"
    REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    TLS_UNTRUSTED = "tls_untrusted"
    TLS = "tls_error"
    NO_CREDENTIALS = "no_credentials"
    UNAUTHORIZED = "unauthorized"
    EXPIRED = "expired"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    NOT_ALLOWED = "not_allowed"
    UNTRUSTED_REALM = "untrusted_realm"  # the login would go to a token server not trusted
    NEVER_PULLED = "never_pulled"  # imagePullPolicy Never, and the image is not on the node
    SERVER_ERROR = "server_error"
    PROTOCOL = "protocol_error"


class RegistryError(Exception):
    """A failure with its cause; `message` says what happened and what to do."""

    def __init__(self, cause: Cause, message: str, **details: Any) -> None:
        super().__init__(message)
        self.cause, self.message, self.details = cause, message, details

    def as_dict(self) -> dict[str, Any]:
        return {"cause": str(self.cause), "message": self.message, **self.details}
