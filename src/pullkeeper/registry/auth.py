"""Docker's token auth for the OCI distribution API, as an httpx auth flow.

A registry answers a request it wants credentials for with 401 and a challenge
(core/challenge.py): Basic, or Bearer naming a token server (its realm) and a service.
What a client learns is kept in its `AuthSession`: the last challenge, and a Bearer token
per (realm, service, scope), cached until shortly before it expires. `RegistryAuth` is the
flow of one API request: sent with what is known for its scope; on a 401 the challenge is
learned, a token fetched when the challenge asks for one, and the request sent once more.
A token request is a request of the flow itself, so it goes through the same client
(its TLS settings and egress guard) and is retried like any other.

The registry names the realm, so a login goes only where it is trusted to go
(core/realms.py): over https, or plain http to a plain-http registry's own host; on the
registry's host, a token host well known for it, or one its credential names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from pullkeeper.core import challenge as challenges
from pullkeeper.core import realms
from pullkeeper.core.dockerconfig import encode_auth
from pullkeeper.registry import diagnose
from pullkeeper.registry.errors import Cause, RegistryError
from pullkeeper.registry.retry import Retry

__all__ = ["AuthSession", "Login", "RegistryAuth"]

# The cache key of a token: (realm, service, scope).
_TokenKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Login:
    """What to log in with: a user name and password (or token), or an identity token."""

    username: str = ""
    password: str = field(default="", repr=False)
    # Docker's `identitytoken`: an OAuth2 refresh token, exchanged by POST for access tokens.
    identity_token: str = field(default="", repr=False)
    # Token servers on other hosts this login may be sent to (see core/realms.py).
    token_hosts: tuple[str, ...] = ()

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)


class AuthSession:
    """What one client knows of its registry's auth, shared by the threads using it: the
    challenge it learned and the tokens it holds. Token requests are built with the client's
    own `build_request`, so they carry its headers and timeouts."""

    def __init__(self, host: str, login: Login, build: Callable[..., httpx.Request]) -> None:
        self.host, self.login, self._build = host, login, build
        self.challenge: challenges.Challenge | None = None
        self._tokens: dict[_TokenKey, tuple[str, float]] = {}
        self._fetching: dict[_TokenKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def learn(self, response: httpx.Response) -> bool:
        """Take the auth challenge of a 401; whether it is one this client can answer."""
        found = challenges.parse_all(response.headers.get_list("www-authenticate"))
        usable = [c for c in found if c.scheme in ("bearer", "basic")]
        if not usable:
            return False
        # Prefer Bearer, as Docker does, when a registry offers both.
        usable.sort(key=lambda c: c.scheme != "bearer")
        self.challenge = usable[0]
        return True

    def basic(self) -> str:
        """The Authorization value of a Basic challenge."""
        return "Basic " + encode_auth(self.login.username, self.login.password)

    def cached(self, key: _TokenKey) -> str:
        """The token held for key while it is fresh, else ''."""
        with self._lock:
            held = self._tokens.get(key)
        return held[0] if held and held[1] > time.monotonic() else ""

    def fetching(self, key: _TokenKey) -> threading.Lock:
        """The lock held while key's token is fetched."""
        with self._lock:
            return self._fetching.setdefault(key, threading.Lock())

    def keep(self, key: _TokenKey, token: str, ttl: float) -> None:
        with self._lock:
            # Renew a little before expiry, so a token never dies mid-request.
            self._tokens[key] = (token, time.monotonic() + ttl * 0.9)

    def forget(self, scope: str, authorization: str) -> None:
        """Drop the refused token only: another thread may have cached a good one meanwhile."""
        with self._lock:
            for key in [
                k
                for k, (token, _) in self._tokens.items()
                if k[2] == scope and authorization == f"Bearer {token}"
            ]:
                del self._tokens[key]

    def token_request(self, key: _TokenKey, registry_scheme: str) -> httpx.Request:
        """The request for key's token: a POST with the identity token, else a GET with the
        login (none when anonymous). The registry is reached over registry_scheme."""
        realm, service, scope = key
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(
                Cause.PROTOCOL, f"{self.host} names an invalid token realm {realm!r}"
            )
        if not self.login.anonymous:
            # The registry names the realm: a login goes only where it is trusted to go.
            untrusted = realms.judge(self.host, registry_scheme, realm, self.login.token_hosts)
            if untrusted is not None:
                raise RegistryError(Cause.UNTRUSTED_REALM, untrusted.reason, realm=untrusted.realm)
        scopes = scope.split()
        if self.login.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self.login.identity_token,
                "service": service,
                "client_id": "pullkeeper",
            }
            if scopes:
                form["scope"] = " ".join(scopes)
            return self._build("POST", realm, data=form)
        query: list[tuple[str, str]] = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        if self.login.username:
            query.append(("account", self.login.username))
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}" if query else realm
        headers = {} if self.login.anonymous else {"Authorization": self.basic()}
        return self._build("GET", url, headers=headers)

    def read_token(self, response: httpx.Response) -> tuple[str, float]:
        """(token, seconds it lives) from a token server's answer; RegistryError when it
        refused or answered without a token."""
        if response.status_code in (400, 401, 403):
            raise diagnose.login_refused(response, self.host, self.login)
        if response.status_code != 200:
            raise diagnose.status_error(response, self.host, "the token request")
        try:
            doc = response.json()
            token = doc.get("token") or doc.get("access_token")
            ttl = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, ttl = None, 0.0
        if not isinstance(token, str) or not token:
            raise RegistryError(
                Cause.PROTOCOL, f"the token server of {self.host} answered without a token"
            )
        # The spec's minimum lifetime is 60 s; some servers send less or nonsense.
        return token, max(ttl, 1.0)


class RegistryAuth(httpx.Auth):
    """The auth flow of one API request for scope (space-separated, as distribution's).

    Its locks and retry waits block: it is for httpx.Client, shared by threads.
    """

    # Token servers' answers are read inside the flow.
    requires_response_body = True

    def __init__(self, session: AuthSession, scope: str, retry: Retry) -> None:
        self._session, self._scope, self._retry = session, scope, retry

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = yield from self._authorize(request)
        response = yield from self._retry.send(request)
        if response.status_code == 401 and self._session.learn(response):
            # Once more with what the challenge asks for; a cached token may have died early.
            self._session.forget(self._scope, sent)
            yield from self._authorize(request)
            yield from self._retry.send(request)

    def _authorize(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, str]:
        """Give request the Authorization known for the scope (none before a challenge);
        that value, '' for none."""
        # The request goes to the registry: its scheme is how the registry is reached.
        value = yield from self._authorization(request.url.scheme)
        if value:
            request.headers["Authorization"] = value
        else:
            request.headers.pop("Authorization", None)
        return value

    def _authorization(self, registry_scheme: str) -> Generator[httpx.Request, httpx.Response, str]:
        ch = self._session.challenge
        if ch is None or (ch.scheme == "basic" and self._session.login.anonymous):
            return ""
        if ch.scheme == "basic":
            return self._session.basic()
        token = yield from self._token(
            (ch.get("realm"), ch.get("service"), self._scope), registry_scheme
        )
        return f"Bearer {token}"

    def _token(
        self, key: _TokenKey, registry_scheme: str
    ) -> Generator[httpx.Request, httpx.Response, str]:
        token = self._session.cached(key)
        if token:
            return token
        # One fetch per scope: threads asking at once wait for it instead of asking too.
        with self._session.fetching(key):
            token = self._session.cached(key)
            if not token:
                fetch = self._session.token_request(key, registry_scheme)
                answer = yield from self._retry.send(fetch)
                token, ttl = self._session.read_token(answer)
                self._session.keep(key, token, ttl)
        return token
