"""Retrying what a registry or token server answers 429 or 5xx, as an httpx auth flow.

An httpx auth flow is what may send a request again after reading its answer, so retries
are one: the registry's own auth flow (registry/auth.py) retries each request it sends,
token requests included, and `Retrying` retries a request sent without credentials. The
wait doubles from half a second, or is what `Retry-After` asks for up to a bound; beyond
the bound the answer is returned at once. Flows block (they sleep): they are for
httpx.Client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from pullkeeper.registry import diagnose

__all__ = ["Retry", "Retrying"]

_RETRYABLE = (429, 500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class Retry:
    """How often a request is sent again, how long a wait may be, and how to wait."""

    retries: int = 3
    max_wait: float = 10.0
    sleep: Callable[[float], None] = time.sleep

    def send(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Yield request until its answer is not to be retried; that answer."""
        delay = 0.5
        for attempt in range(self.retries + 1):
            response = yield request
            if response.status_code not in _RETRYABLE or attempt == self.retries:
                return response
            wait = diagnose.retry_after(response) or delay
            if wait > self.max_wait:
                return response
            response.read()  # to the end: the connection goes back to the pool meanwhile
            self.sleep(wait)
            delay *= 2
        raise AssertionError("unreachable")


class Retrying(httpx.Auth):
    """No credentials: the request alone, retried (a ping, a download from blob storage)."""

    def __init__(self, retry: Retry) -> None:
        self._retry = retry

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from self._retry.send(request)
