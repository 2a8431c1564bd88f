"""Browser sessions: an API token of services/auth in an HttpOnly cookie.

Logging in through the page is `auth.login` (argon2, the login throttle, the
audit event) with a shorter lifetime; the cookie holds the token's id and the
token, so logging out revokes exactly that token. Every request authenticates
the token as the API does, so a revoked token or a changed role counts at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from pullkeeper.services import auth
from pullkeeper.services.actor import Actor
from pullkeeper.services.errors import ServiceError, Unauthorized
from pullkeeper.services.server import Server
from pullkeeper.web import security

COOKIE = "pk_session"
LIFETIME = timedelta(hours=12)


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the login form."""


@dataclass(frozen=True, slots=True)
class WebSession:
    actor: Actor
    token_id: str
    csrf: str


def server_of(request: Request) -> Server:
    s: Server = request.app.state.server
    return s


def source(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(request: Request) -> bool:
    # Behind a TLS-terminating proxy listed in trusted_proxies, its X-Forwarded-Proto makes
    # the scheme https.
    return request.url.scheme == "https"


def optional(request: Request) -> WebSession | None:
    value = request.cookies.get(COOKIE, "")
    token_id, dot, token = value.partition(".")
    if not dot or not token.startswith(auth.TOKEN_PREFIX):
        return None
    server = server_of(request)
    try:
        actor = server.authenticate(token, source(request))
    except Unauthorized:
        return None
    # The content-hash key is the server's secret that every replica on the store shares.
    return WebSession(actor, token_id, security.session_csrf(server.content_hash_key(), token))


def required(request: Request) -> WebSession:
    found = optional(request)
    if found is None:
        raise LoginRequired
    return found


def log_in(request: Request, response: Response, username: str, password: str) -> None:
    """Check the password as the API does and set the session cookie; ServiceError if wrong."""
    server = server_of(request)
    ttl = min(LIFETIME, timedelta(days=server.settings.token_ttl_days))
    with server.transaction() as session:
        issued = auth.login(session, server.throttle, username, password, source(request), ttl)
    response.set_cookie(
        COOKIE,
        f"{issued.id}.{issued.token}",
        max_age=int(ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(security.LOGIN_CSRF_COOKIE, path="/login")


def log_out(request: Request, response: Response, web: WebSession) -> None:
    server = server_of(request)
    try:
        with server.transaction() as session:
            auth.revoke_token(session, web.actor, web.token_id)
    except ServiceError:
        pass  # already gone: the cookie is dropped all the same
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        security.LOGIN_CSRF_COOKIE,
        value,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
