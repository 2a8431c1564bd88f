"""A reverse proxy on 127.0.0.1 in front of a plain-HTTP registry, which forwards requests
byte-for-byte and can be told to misbehave the way real registries and CDNs do.

- `inject(...)`: answer the next N requests whose path matches a regex with a canned response
  (429 + Retry-After, Docker Hub's TOOMANYREQUESTS, 500, 503...).
- `redirect_blobs()`: answer blob GETs with 307 to a second listener, which serves the bytes
  it fetched from the registry, like an S3-backed registry's presigned URLs. That listener
  refuses requests carrying an `Authorization` header, as S3 does, so a client leaking its
  registry credentials to the storage host fails.
- `paginate_tags(n)`: page tag lists as the OCI distribution spec describes (`n`, `last`,
  a `Link: <...>; rel="next"` header, lexical order), which distribution 2.8 does not do,
  over the upstream's full list. Pages answer exactly what was asked, so a client asking
  for the wrong `last` gets the wrong tags.
- `requests`: every request both listeners saw, with headers, for assertions.

The Host header is forwarded unchanged, so the registry builds its Location URLs (upload
sessions) against the proxy and clients keep talking through it.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import BufferedIOBase
from typing import Literal

from tests.registry.httpd import LocalHTTPServer, QuietHandler

Listener = Literal["proxy", "blobs"]

# Hop-by-hop headers (RFC 9110 7.6.1) are per connection; everything else passes unchanged.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    }
)
TAGS_PATH = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")
BLOB_PATH = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_STORE_PATH = re.compile(r"^/blobs/(?P<repo>.+)/(?P<digest>sha256:[0-9a-f]{64})$")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

DOCKER_HUB_TOOMANYREQUESTS = json.dumps(
    {
        "errors": [
            {
                "code": "TOOMANYREQUESTS",
                "message": "You have reached your pull rate limit. You may increase the limit "
                "by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
            }
        ]
    }
).encode()
# What Docker Hub sends beside it (anonymous limit: 100 pulls per 6 hours).
DOCKER_HUB_RATELIMIT_HEADERS = (
    ("ratelimit-limit", "100;w=21600"),
    ("ratelimit-remaining", "0;w=21600"),
    ("docker-ratelimit-source", "192.0.2.10"),
)
_S3_AUTH_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code><Message>'
    b"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    b"query string parameter or the Authorization header should be specified</Message>"
    b"</Error>"
)


@dataclass(frozen=True, kw_only=True)
class SeenRequest:
    listener: Listener  # "proxy" (the registry face) or "blobs" (the redirect target)
    method: str
    path: str  # without the query
    query: str  # raw, without '?'
    headers: tuple[tuple[str, str], ...]  # as received, in order, duplicates kept
    status: int  # what the client was answered
    injected: bool  # answered by the proxy itself (a rule or a redirect), not the registry

    def header(self, name: str) -> str | None:
        """The first value of a header, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    methods: frozenset[str] | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    remaining: int


def _read_chunked_raw(rfile: BufferedIOBase) -> bytes:
    """A chunked request body exactly as sent (sizes, extensions, trailers), to forward as is."""
    raw = bytearray()
    while True:
        line = rfile.readline(65537)
        raw += line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:
                trailer = rfile.readline(65537)
                raw += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(raw)
        raw += rfile.read(size + 2)  # the data and its CRLF


class FaultProxy:
    """Start with `start()`, stop with `stop()` (the `fault_proxy` fixture does both)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # "127.0.0.1:PORT" of a plain-HTTP registry
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._redirect_methods: frozenset[str] = frozenset()
        self._redirect_status = 307
        self._tag_page_size = 0
        self._seen: list[SeenRequest] = []
        self._proxy = LocalHTTPServer(_proxy_handler(self))
        self._store = LocalHTTPServer(_store_handler(self))

    @property
    def host(self) -> str:
        """127.0.0.1:PORT, the registry host clients should use."""
        return self._proxy.host

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def blob_host(self) -> str:
        """127.0.0.1:PORT of the second listener blob redirects point to."""
        return self._store.host

    @property
    def blob_url(self) -> str:
        return f"http://{self.blob_host}"

    def start(self) -> None:
        self._proxy.start()
        self._store.start()

    def stop(self) -> None:
        self._proxy.stop()
        self._store.stop()

    # ------------------------------------------------------------------ controls

    def inject(
        self,
        path_regex: str,
        *,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes | str = b"",
        times: int = 1,
        methods: Sequence[str] | None = None,
    ) -> None:
        """Answer the next `times` requests whose path (no query) `re.search`es `path_regex`
        (and whose method is in `methods`, if given) with this response instead of forwarding.
        Rules are tried in the order they were added; each counts down on its own.
        """
        pairs = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        with self._lock:
            self._rules.append(
                _Rule(
                    pattern=re.compile(path_regex),
                    methods=frozenset(m.upper() for m in methods) if methods else None,
                    status=status,
                    headers=pairs,
                    body=body.encode("utf-8") if isinstance(body, str) else body,
                    remaining=times,
                )
            )

    def rate_limit(
        self,
        path_regex: str = r"^/v2/.+/manifests/",
        *,
        times: int = 1,
        retry_after: str | None = "1",
        methods: Sequence[str] | None = None,
    ) -> None:
        """Docker Hub's rate-limit answer: 429, TOOMANYREQUESTS body, `ratelimit-*` headers,
        and `Retry-After` unless `retry_after` is None."""
        headers = [("Content-Type", "application/json"), *DOCKER_HUB_RATELIMIT_HEADERS]
        if retry_after is not None:
            headers.append(("Retry-After", retry_after))
        self.inject(
            path_regex,
            status=429,
            headers=headers,
            body=DOCKER_HUB_TOOMANYREQUESTS,
            times=times,
            methods=methods,
        )

    def pending_injections(self) -> int:
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def clear_injections(self) -> None:
        with self._lock:
            self._rules.clear()

    def redirect_blobs(
        self, enabled: bool = True, *, methods: Sequence[str] = ("GET",), status: int = 307
    ) -> None:
        """While enabled, blob requests (`/v2/<repo>/blobs/sha256:...`) with these methods
        get `status` with a presigned-looking Location on the second listener."""
        with self._lock:
            self._redirect_methods = (
                frozenset(m.upper() for m in methods) if enabled else frozenset()
            )
            self._redirect_status = status

    def paginate_tags(self, default_page_size: int | None = 100) -> None:
        """Page GET tags/list answers (`n` from the query, else this); None turns it off."""
        with self._lock:
            self._tag_page_size = default_page_size or 0

    def _tag_page(self, path: str, query: str) -> tuple[int, bytes, list[tuple[str, str]]] | None:
        with self._lock:
            default = self._tag_page_size
        if not default or TAGS_PATH.match(path) is None:
            return None
        conn = self._upstream()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            return response.status, data, [("Content-Type", "application/json")]
        listed = json.loads(data)
        # The spec's lexical order (distribution 2.8 lists in its storage's order).
        tags: list[str] = sorted(listed.get("tags") or [])
        params = urllib.parse.parse_qs(query)
        n = int((params.get("n") or [str(default)])[0])
        last = (params.get("last") or [""])[0]
        rest = [t for t in tags if t > last] if last else tags
        page = rest[:n]
        headers = [("Content-Type", "application/json")]
        if len(rest) > n:
            following = urllib.parse.urlencode({"last": page[-1], "n": n})
            headers.append(("Link", f'<{path}?{following}>; rel="next"'))
        body = json.dumps({"name": listed.get("name"), "tags": page}).encode()
        return 200, body, headers

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def requests_matching(
        self, path_regex: str, *, listener: Listener | None = "proxy"
    ) -> list[SeenRequest]:
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if pattern.search(r.path) and (listener is None or r.listener == listener)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._seen.clear()

    # ------------------------------------------------------------------ internals

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if (
                    rule.remaining > 0
                    and (rule.methods is None or method in rule.methods)
                    and rule.pattern.search(path)
                ):
                    rule.remaining -= 1
                    return rule
        return None

    def _redirect_target(self, method: str, path: str) -> tuple[int, str] | None:
        with self._lock:
            if method not in self._redirect_methods:
                return None
            status = self._redirect_status
        match = BLOB_PATH.match(path)
        if match is None:
            return None
        query = urllib.parse.urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Expires": "1200",
                "X-Amz-Signature": secrets.token_hex(32),
            }
        )
        return status, f"{self.blob_url}/blobs/{match['repo']}/{match['digest']}?{query}"

    def _record(self, entry: SeenRequest) -> None:
        with self._lock:
            self._seen.append(entry)

    def _upstream(self) -> http.client.HTTPConnection:
        host, port = self.upstream.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=30)


def _proxy_handler(proxy: FaultProxy) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            headers = tuple(self.headers.items())
            # Read the body first: a canned answer must not leave it in the connection.
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = _read_chunked_raw(self.rfile)
            else:
                body = self.read_body()

            def record(status: int, injected: bool) -> None:
                proxy._record(
                    SeenRequest(
                        listener="proxy",
                        method=self.command,
                        path=url.path,
                        query=url.query,
                        headers=headers,
                        status=status,
                        injected=injected,
                    )
                )

            rule = proxy._take_rule(self.command, url.path)
            if rule is not None:
                record(rule.status, True)
                self.send_bytes(rule.status, rule.body, list(rule.headers))
                return
            paged = proxy._tag_page(url.path, url.query) if self.command == "GET" else None
            if paged is not None:
                record(paged[0], True)
                self.send_bytes(paged[0], paged[1], paged[2])
                return
            redirect = proxy._redirect_target(self.command, url.path)
            if redirect is not None:
                record(redirect[0], True)
                self.send_bytes(redirect[0], b"", [("Location", redirect[1])])
                return
            conn = proxy._upstream()
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        conn.putheader(name, value)
                conn.endheaders()
                if body:
                    conn.send(body)
                response = conn.getresponse()
                data = response.read()
            except OSError as e:
                record(502, True)
                self.send_bytes(502, f"upstream failed: {e}\n".encode(), content_type="text/plain")
                return
            finally:
                conn.close()
            record(response.status, False)
            self.send_response_only(response.status, response.reason)
            has_length = False
            for name, value in response.getheaders():
                lowered = name.lower()
                # http.client undid any chunking; the length below replaces it.
                if lowered in _HOP_BY_HOP or lowered == "transfer-encoding":
                    continue
                has_length |= lowered == "content-length"
                self.send_header(name, value)
            if not has_length and self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    for method in _METHODS:
        setattr(Handler, f"do_{method}", Handler._serve)
    return Handler


def _store_handler(proxy: FaultProxy) -> type[QuietHandler]:
    class StoreHandler(QuietHandler):
        """The "object store" blob redirects point at."""

        def do_GET(self) -> None:
            self._serve()

        def do_HEAD(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            status, body, headers = self._answer(url.path)
            proxy._record(
                SeenRequest(
                    listener="blobs",
                    method=self.command,
                    path=url.path,
                    query=url.query,
                    headers=tuple(self.headers.items()),
                    status=status,
                    injected=True,
                )
            )
            self.send_bytes(status, body, headers, content_type="application/xml")

        def _answer(self, path: str) -> tuple[int, bytes, list[tuple[str, str]]]:
            if self.headers.get("Authorization") is not None:
                return 400, _S3_AUTH_ERROR, []
            match = _STORE_PATH.match(path)
            if match is None:
                return 404, b"<Error><Code>NoSuchKey</Code></Error>", []
            conn = proxy._upstream()
            try:
                conn.request("GET", f"/v2/{match['repo']}/blobs/{match['digest']}")
                response = conn.getresponse()
                data = response.read()
            finally:
                conn.close()
            if response.status != 200:
                return 404, b"<Error><Code>NoSuchKey</Code></Error>", []
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("ETag", f'"{match["digest"].split(":", 1)[1]}"'),
                ("Accept-Ranges", "bytes"),
            ]
            wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if wanted is not None:
                start = int(wanted[1])
                end = int(wanted[2]) if wanted[2] else len(data) - 1
                if start >= len(data):
                    return 416, b"", [("Content-Range", f"bytes */{len(data)}")]
                end = min(end, len(data) - 1)
                headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
                return 206, data[start : end + 1], headers
            return 200, data, headers

    return StoreHandler


def describe(requests: Iterable[SeenRequest]) -> str:
    """One line per request, for assertion messages."""
    return "\n".join(
        f"{r.listener} {r.method} {r.path}{'?' + r.query if r.query else ''} -> {r.status}"
        f"{' (injected)' if r.injected else ''}"
        for r in requests
    )
