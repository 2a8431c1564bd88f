"""Security headers for the web UI's responses, and CSRF tokens for its forms.

CSRF: a signed-in browser's forms carry an HMAC of its session token (which
only that browser holds, in an HttpOnly cookie) under a key of the server's,
so nothing is stored per session, the token cannot be computed from the
session token alone, and every replica agrees (the key comes from the store).
The login form, before any session, uses a random value in a cookie of its
own (double submit). Both are checked together with the Origin header when the
browser sends one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pullkeeper.services.errors import Forbidden

# The REST API, the webhook, the token service and the probes answer machines, not pages.
NOT_WEB = ("/api/", "/admission/", "/token", "/healthz", "/readyz", "/metrics")
# The one page under /api/: the interactive API docs, served with the pages' headers.
API_DOCS = "/api/v1/docs"

# No inline script or style anywhere: scripts and styles come from /static only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
LOGIN_CSRF_COOKIE = "pk_login_csrf"
_CSRF_KEY_LABEL = b"pullkeeper web csrf"


def is_web(path: str) -> bool:
    return path == API_DOCS or not path.startswith(NOT_WEB)


class SecurityHeaders:
    """Adds CSP and friends to every web response; pages are never cached (they hold names)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if scope.get("scheme") == "https":
                    headers.setdefault("strict-transport-security", "max-age=31536000")
                headers.setdefault(
                    "cache-control", "public, max-age=3600" if static else "no-store"
                )
            await send(message)

        await self.app(scope, receive, sending)


def session_csrf(server_key: bytes, session_token: str) -> str:
    """The CSRF token of a session: an HMAC-SHA256 of its session token under a key derived
    from `server_key`, which every replica of the server holds and no browser does."""
    # A key of its own, so CSRF tokens and whatever else server_key signs never coincide.
    key = hmac.new(server_key, _CSRF_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older browsers omit it; the token check still applies
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def check(request: Request, sent: str, expected: str | None) -> None:
    """Forbidden unless the form's token matches and the request comes from this origin."""
    if not _same_origin(request):
        raise Forbidden("this form was sent from another site; open the page here and retry")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise Forbidden("the form has expired or was not sent from this page; reload and retry")
