"""Why an exchange failed, read from the errors the SDKs and httpx raise: what each was raised
from, and whether a TLS certificate was refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

__all__ = ["UNTRUSTED", "chain", "tls_untrusted"]

UNTRUSTED = "its TLS certificate is not trusted (is the settings' CA file the right one?)"


def chain(e: BaseException) -> Iterator[BaseException]:
    """e and what it was raised from, in turn; azure-core's wrapped errors (inner_exception)
    too."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "inner_exception", None)
        current = current.__cause__ or current.__context__ or inner


def tls_untrusted(e: BaseException) -> bool:
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in chain(e))
