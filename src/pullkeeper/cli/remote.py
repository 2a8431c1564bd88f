"""The HTTP client of the commands that talk to a pullkeeper server.

One small class over `httpx.Client`: the server's base URL, the bearer token,
timeouts, and every failure turned into a one-line `CLIError`. The server's
errors are `{"error": {"code", "message", "field"}}`; a 4xx becomes exit status
2, a 5xx exit status 1; a server that cannot be reached is exit status 2 with
what went wrong (refused, unknown host, TLS, timeout). httpx loads when a
`Remote` is made, not with this module, so a command's --help never loads it.
"""

from __future__ import annotations

import os
import socket
import ssl
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

from pullkeeper import __version__
from pullkeeper.cli.common import CLIError

if TYPE_CHECKING:
    import httpx

API = "/api/v1"
DEFAULT_TIMEOUT = 30.0
TIMEOUT_ENV = "PULLKEEPER_TIMEOUT"


class RemoteError(CLIError):
    """The server refused or could not be reached; `status` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerFailed(RemoteError):
    """The server failed (5xx): not the caller's input, so exit status 1."""

    exit_code = 1


def normalize_url(raw: str) -> str:
    """http(s)://host[:port][/prefix] with no trailing slash, no /api/v1, no query."""
    text = raw.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CLIError(f"{raw!r} is not a server URL: write http://HOST:PORT or https://HOST")
    if parts.username is not None or parts.password is not None:
        raise CLIError("the server URL must not carry a user name or password")
    if parts.query or parts.fragment:
        raise CLIError(f"{raw!r} is not a server URL: it has a query or fragment")
    path = parts.path.rstrip("/").removesuffix(API).rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def seg(value: str) -> str:
    """One path segment, percent-encoded, so a name can never reach another endpoint."""
    if value in ("", ".", ".."):
        raise CLIError(f"{value!r} is not a name or id")
    return quote(value, safe="")


def timeout_seconds() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise CLIError(f"{TIMEOUT_ENV} must be a number of seconds above 0, not {raw!r}")
    return value


def _causes(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _connect_reason(error: httpx.ConnectError) -> str:
    for cause in _causes(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running?)"
        if isinstance(cause, socket.gaierror):
            return "the host name cannot be resolved"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or cause}); is it really https?"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[0].lower() + cause.strerror[1:]
    return str(error) or type(error).__name__


class Remote:
    """A pullkeeper server at `base_url`, called with `token` (none for login)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        ca_file: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """`ca_file`: the CA bundle to trust instead of the system's; `timeout`: seconds,
        else PULLKEEPER_TIMEOUT's."""
        import httpx  # noqa: PLC0415 - loaded by the commands that call a server, when they run

        self.base_url = base_url
        self.timeout = timeout or timeout_seconds()
        headers = {"Accept": "application/json", "User-Agent": f"pullkeeper-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=base_url + API,
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            follow_redirects=False,
            verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
        )

    def __enter__(self) -> Remote:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ requests

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._json(self.request("GET", path, params=params))

    def listing(self, path: str, params: dict[str, Any], *, every: bool = False) -> Any:
        """A page of a listing; with `every`, it and all the pages after it as one, each read
        from the `next` cursor of the one before (so rows neither repeat nor go missing when
        others are added or removed meanwhile)."""
        page = self.get(path, params)
        if not every:
            return page
        items = list(page["items"])
        following = page
        while following.get("next"):
            following = self.get(path, params | {"offset": 0, "cursor": following["next"]})
            items.extend(following["items"])
        return page | {"items": items, "next": None}

    def get_tagged(self, path: str) -> tuple[Any, str | None]:
        """The object and its ETag (None from a server that sends none)."""
        response = self.request("GET", path)
        return self._json(response), response.headers.get("etag")

    def get_unless(
        self, path: str, params: dict[str, Any], etag: str | None
    ) -> tuple[str | None, Any]:
        """The object and its ETag; (etag, None) when it is still the one `etag` names (304)."""
        headers = {"If-None-Match": etag} if etag else None
        response = self.request("GET", path, params=params, headers=headers, unchanged=True)
        if response.status_code == 304:
            return etag, None
        return response.headers.get("etag"), self._json(response)

    def write(self, method: str, path: str, body: dict[str, Any], if_match: str | None) -> Any:
        """A PATCH or PUT made only while the object is at the version `if_match` names."""
        headers = {"If-Match": if_match} if if_match else None
        return self._json(self.request(method, path, body=body, headers=headers))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._json(self.request("POST", path, body=body))

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self.request("PUT", path, body=body))

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self.request("PATCH", path, body=body))

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def raw(self, path: str) -> bytes:
        return self.request("GET", path).content

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        unchanged: bool = False,
    ) -> httpx.Response:
        """The answer (2xx; 304 too when `unchanged`), or RemoteError."""
        import httpx  # noqa: PLC0415 - loaded already: __init__ made the client

        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(
                method, path, json=body, params=query or None, headers=headers
            )
        except httpx.TimeoutException as e:
            if isinstance(e, httpx.ConnectTimeout):
                raise RemoteError(
                    f"cannot connect to {self.base_url}: no answer within {self.timeout:g}s"
                ) from None
            raise RemoteError(
                f"the server at {self.base_url} did not answer within {self.timeout:g}s "
                f"(set {TIMEOUT_ENV} to wait longer)"
            ) from None
        except httpx.ConnectError as e:
            raise RemoteError(f"cannot connect to {self.base_url}: {_connect_reason(e)}") from None
        except httpx.TransportError as e:
            reason = str(e) or type(e).__name__
            raise RemoteError(f"the connection to {self.base_url} failed: {reason}") from None
        if response.is_success or (unchanged and response.status_code == 304):
            return response
        self._fail(response)

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CLIError(
                f"the answer from {self.base_url} is not JSON; is it a pullkeeper server?"
            ) from None

    def _fail(self, response: httpx.Response) -> NoReturn:
        status = response.status_code
        if response.is_redirect:
            where = response.headers.get("location", "elsewhere")
            raise RemoteError(
                f"{self.base_url} redirects to {where}; use that address as the server URL",
                status,
            )
        message, field = None, None
        try:
            error = response.json()["error"]
            message, field = str(error["message"]), error.get("field")
        except (ValueError, KeyError, TypeError):
            pass
        if message is None:
            message = f"HTTP {status} {response.reason_phrase} from {self.base_url}"
            if status == 404:
                message += "; is it a pullkeeper server?"
        elif field and not message.startswith(f"{field}:"):
            message += f" (field: {field})"
        if status >= 500:
            raise ServerFailed(f"the server failed: {message}", status)
        raise RemoteError(message, status)
