"""A Docker registry token server (the `auth.token` realm) for distribution 2.8.

Speaks both flavours real clients use:
- GET realm?service=&scope=...&account=&offline_token=true, optional Basic auth
  (https://distribution.github.io/distribution/spec/auth/token/);
- POST realm, form `grant_type=password|refresh_token` (the OAuth2 flavour,
  https://distribution.github.io/distribution/spec/auth/oauth/).

Tokens are ES256 JWTs with the signing certificate in the `x5c` header (standard base64, which
is what distribution decodes), `aud` a plain string (distribution 2.8 rejects a list).
Like real token servers it never refuses a scope: what the ACL does not allow comes back with
an empty `actions` list, and the registry then answers 401 insufficient_scope.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import fnmatch
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from tests.registry.httpd import LocalHTTPServer, QuietHandler
from tests.registry.pki import Issued

REALM_PATH = "/token"
DEFAULT_EXPIRES_IN = 300


@dataclass(frozen=True, kw_only=True)
class Grant:
    """An ACL line: `user` (None: everyone, anonymous included) gets `actions` on resources of
    `resource_type` whose name matches the glob `pattern`. Action "*" grants whatever is asked.
    """

    user: str | None
    resource_type: str
    pattern: str
    actions: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class Access:
    """One entry of a token's `access` claim."""

    type: str
    name: str
    actions: tuple[str, ...]

    def as_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True, kw_only=True)
class TokenRequest:
    """One request the token server received, for assertions."""

    method: str
    path: str
    # The query (GET) or form (POST) fields; repeated fields keep every value. A POST's
    # `password` is replaced by "<redacted>" so failures never print it.
    params: Mapping[str, tuple[str, ...]]
    username: str | None  # the Basic auth user (GET) or form username (POST); not verified
    scopes: tuple[str, ...]  # the requested scopes, one per entry
    status: int
    # What the issued token granted (empty when no token was issued).
    granted: tuple[Access, ...] = field(default=())


class TokenError(Exception):
    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_scope(scope: str) -> Access:
    """`repository:team-a/app:pull,push` (the name may hold ':' e.g. `repository(plugin)`)."""
    try:
        resource_type, rest = scope.split(":", 1)
        name, actions = rest.rsplit(":", 1)
    except ValueError:
        raise TokenError(
            400, {"error": "invalid_scope", "error_description": f"bad scope {scope!r}"}
        ) from None
    if not resource_type or not name:
        raise TokenError(400, {"error": "invalid_scope", "error_description": f"bad {scope!r}"})
    return Access(type=resource_type, name=name, actions=tuple(a for a in actions.split(",") if a))


class TokenServer:
    """The token server and its test controls; thread-safe."""

    def __init__(
        self,
        *,
        service: str,
        issuer: str,
        signer: Issued,
        users: Mapping[str, str],
        acl: Sequence[Grant],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self._signer = signer
        self._users = dict(users)
        self._acl = tuple(acl)
        self._x5c = [base64.b64encode(signer.cert_der).decode("ascii")]
        self._lock = threading.Lock()
        self._expires_in = DEFAULT_EXPIRES_IN
        self._failures: list[tuple[int, list[tuple[str, str]], bytes]] = []
        self._counts: Counter[str] = Counter()
        self._log: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        # Users added by `accept` until the next reset: their password as of each request.
        self._accepted: dict[str, Callable[[], str | None]] = {}
        self._accepted_acl: tuple[Grant, ...] = ()
        self._httpd = LocalHTTPServer(_make_handler(self), tls)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return self._httpd.url

    @property
    def realm(self) -> str:
        return self.url + REALM_PATH

    def start(self) -> None:
        self._httpd.start()

    def stop(self) -> None:
        self._httpd.stop()

    # ------------------------------------------------------------------ controls

    def request_count(self, method: str | None = None) -> int:
        """Requests received at the realm (any outcome, injected failures included)."""
        with self._lock:
            return self._counts[method.upper()] if method else sum(self._counts.values())

    @property
    def counts(self) -> dict[str, int]:
        """Requests by HTTP method, e.g. {"GET": 3, "POST": 1}."""
        with self._lock:
            return dict(self._counts)

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._log)

    def set_expires_in(self, seconds: int) -> None:
        """`expires_in` (and the JWT's exp - iat) of tokens issued from now on."""
        with self._lock:
            self._expires_in = seconds

    def fail_next(
        self,
        count: int,
        *,
        status: int = 429,
        retry_after: str | None = "1",
        body: bytes | None = None,
    ) -> None:
        """Answer the next `count` realm requests with `status` (before any auth check)."""
        headers = [("Retry-After", retry_after)] if retry_after is not None else []
        if body is None:
            body = json.dumps(
                {"errors": [{"code": "TOOMANYREQUESTS", "message": "too many requests"}]}
                if status == 429
                else {"errors": [{"code": "UNAVAILABLE", "message": "injected failure"}]}
            ).encode()
        with self._lock:
            self._failures.extend([(status, headers, body)] * count)

    def accept(
        self, username: str, password: Callable[[], str | None], grants: Sequence[Grant]
    ) -> None:
        """Until the next reset, `username` logs in with whatever password() gives at the
        time (a rotating secret, such as a cloud's newest registry token: one it no longer
        gives is refused as an expired one would be; None refuses every password), and is
        granted `grants` besides the ACL's."""
        with self._lock:
            self._accepted[username] = password
            self._accepted_acl += tuple(grants)

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh_tokens.clear()

    def reset(self) -> None:
        """Default expiry, no pending failures, counters and log cleared, the users `accept`
        added gone.

        Refresh tokens stay valid: a client may still hold one from an earlier test.
        """
        with self._lock:
            self._expires_in = DEFAULT_EXPIRES_IN
            self._accepted.clear()
            self._accepted_acl = ()
            self._failures.clear()
            self._counts.clear()
            self._log.clear()

    def decode(self, token: str) -> dict[str, Any]:
        """The claims of a token this server issued (signature, aud and iss checked)."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._signer.key.public_key(),
            algorithms=["ES256"],
            audience=self.service,
            issuer=self.issuer,
        )
        return claims

    # ------------------------------------------------------------------ protocol

    def _count(self, method: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
        with self._lock:
            self._counts[method] += 1
            return self._failures.pop(0) if self._failures else None

    def _record(self, entry: TokenRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def check_password(self, username: str, password: str) -> bool:
        with self._lock:
            current = self._accepted.get(username)
        expected = current() if current is not None else self._users.get(username)
        return expected is not None and secrets.compare_digest(
            expected.encode("utf-8"), password.encode("utf-8")
        )

    def _allowed(self, user: str | None, wanted: Access) -> tuple[str, ...]:
        allowed: set[str] = set()
        with self._lock:
            acl = self._acl + self._accepted_acl
        for grant in acl:
            if grant.user is not None and grant.user != user:
                continue
            if grant.resource_type != wanted.type or not fnmatch.fnmatchcase(
                wanted.name, grant.pattern
            ):
                continue
            allowed |= set(wanted.actions) if "*" in grant.actions else set(grant.actions)
        # The order asked for, as real servers echo it.
        return tuple(a for a in wanted.actions if a in allowed)

    def grant(self, user: str | None, scopes: Sequence[str]) -> tuple[Access, ...]:
        merged: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            wanted = parse_scope(scope)
            actions = merged.setdefault((wanted.type, wanted.name), [])
            actions.extend(a for a in wanted.actions if a not in actions)
        return tuple(
            Access(
                type=t,
                name=n,
                actions=self._allowed(user, Access(type=t, name=n, actions=tuple(a))),
            )
            for (t, n), a in merged.items()
        )

    def issue(self, user: str | None, access: Sequence[Access]) -> tuple[str, int, float]:
        with self._lock:
            expires_in = self._expires_in
        now = time.time()
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": int(now) + expires_in,
            "nbf": int(now),
            "iat": int(now),
            "jti": secrets.token_hex(16),
            "access": [a.as_claim() for a in access],
        }
        token = jwt.encode(claims, self._signer.key, algorithm="ES256", headers={"x5c": self._x5c})
        return token, expires_in, now

    def new_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    def refresh_token_user(self, token: str) -> str | None:
        with self._lock:
            return self._refresh_tokens.get(token)


def _split_scopes(values: Sequence[str]) -> list[str]:
    # Repeated `scope` fields (GET) and space-separated lists (the OAuth2 form) both occur.
    return [s for value in values for s in value.split(" ") if s]


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _make_handler(server: TokenServer) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            body = self.read_body() if method == "POST" else b""
            if url.path != REALM_PATH:
                self.send_bytes(404, b'{"error":"not_found"}')
                return
            failure = server._count(method)
            if method == "GET":
                params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            else:
                params = urllib.parse.parse_qs(
                    body.decode("utf-8", "replace"), keep_blank_values=True
                )
            username: str | None = None
            if method == "GET" and self.headers.get("Authorization"):
                basic = _basic_credentials(self.headers["Authorization"])
                username = basic[0] if basic else None
            elif method == "POST":
                username = (params.get("username") or [""])[0] or None
            scopes = tuple(_split_scopes(params.get("scope", [])))
            shown = {
                k: tuple("<redacted>" if k == "password" else x for x in v)
                for k, v in params.items()
            }

            def record(status: int, granted: tuple[Access, ...] = ()) -> None:
                server._record(
                    TokenRequest(
                        method=method,
                        path=url.path,
                        params=shown,
                        username=username,
                        scopes=scopes,
                        status=status,
                        granted=granted,
                    )
                )

            if failure is not None:
                status, headers, fail_body = failure
                record(status)
                self.send_bytes(status, fail_body, headers)
                return
            try:
                if method == "GET":
                    answer, granted = self._get(params, scopes)
                else:
                    answer, granted = self._post(params, scopes)
            except TokenError as e:
                record(e.status)
                headers = (
                    [("WWW-Authenticate", 'Basic realm="pullkeeper-test-token-server"')]
                    if e.status == 401 and method == "GET"
                    else []
                )
                self.send_bytes(e.status, json.dumps(e.body).encode(), headers)
                return
            record(200, granted)
            self.send_bytes(200, json.dumps(answer).encode())

        def _check_service(self, params: Mapping[str, list[str]]) -> None:
            service = (params.get("service") or [""])[0]
            if service != server.service:
                raise TokenError(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": f"unknown service {service!r}",
                    },
                )

        def _get(
            self, params: Mapping[str, list[str]], scopes: Sequence[str]
        ) -> tuple[dict[str, Any], tuple[Access, ...]]:
            self._check_service(params)
            user: str | None = None
            header = self.headers.get("Authorization")
            if header is not None:
                basic = _basic_credentials(header)
                if basic is None or not server.check_password(*basic):
                    raise TokenError(401, {"details": "incorrect username or password"})
                user = basic[0]
            granted = server.grant(user, scopes)
            token, expires_in, issued = server.issue(user, granted)
            answer: dict[str, Any] = {
                "token": token,
                "access_token": token,
                "expires_in": expires_in,
                "issued_at": _iso(issued),
            }
            if user is not None and (params.get("offline_token") or [""])[0] == "true":
                answer["refresh_token"] = server.new_refresh_token(user)
            return answer, granted

        def _post(
            self, params: Mapping[str, list[str]], scopes: Sequence[str]
        ) -> tuple[dict[str, Any], tuple[Access, ...]]:
            def field_value(name: str) -> str:
                return (params.get(name) or [""])[0]

            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type != "application/x-www-form-urlencoded":
                raise TokenError(
                    400,
                    {"error": "invalid_request", "error_description": "want a form body"},
                )
            if not field_value("client_id"):
                raise TokenError(
                    400, {"error": "invalid_request", "error_description": "client_id missing"}
                )
            self._check_service(params)
            grant_type = field_value("grant_type")
            refresh: str | None = None
            if grant_type == "password":
                user = field_value("username")
                if not server.check_password(user, field_value("password")):
                    raise TokenError(
                        401,
                        {
                            "error": "invalid_grant",
                            "error_description": "incorrect username or password",
                        },
                    )
                if field_value("access_type") == "offline":
                    refresh = server.new_refresh_token(user)
            elif grant_type == "refresh_token":
                found = server.refresh_token_user(field_value("refresh_token"))
                if found is None:
                    raise TokenError(
                        401,
                        {"error": "invalid_grant", "error_description": "unknown refresh token"},
                    )
                user = found
            else:
                raise TokenError(
                    400,
                    {
                        "error": "unsupported_grant_type",
                        "error_description": f"grant_type {grant_type!r}",
                    },
                )
            granted = server.grant(user, scopes)
            token, expires_in, issued = server.issue(user, granted)
            answer: dict[str, Any] = {
                "access_token": token,
                "expires_in": expires_in,
                "issued_at": _iso(issued),
                "scope": " ".join(
                    f"{a.type}:{a.name}:{','.join(a.actions)}" for a in granted if a.actions
                ),
            }
            if refresh is not None:
                answer["refresh_token"] = refresh
            return answer, granted

    return Handler
