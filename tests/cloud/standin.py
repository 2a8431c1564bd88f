"""The base of the clouds' stand-ins: an HTTPS server on 127.0.0.1 (tests/registry/httpd.py, so
its teardown is bounded) that hands each request to the stand-in's `answer`, keeps what it
was sent, and answers injected failures first when told to; and a port where none listens.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tests.registry.httpd import LocalHTTPServer, QuietHandler

Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Received:
    """One request a stand-in was sent: its form fields as sent, secrets included, so that
    tests can look for them where they must not be."""

    method: str
    path: str
    form: dict[str, str]


class _Server(LocalHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client refusing the certificate is what some tests are about: no traceback.
        if not isinstance(sys.exc_info()[1], ssl.SSLError):
            super().handle_error(request, client_address)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def server_tls(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class StandIn:
    """Subclasses answer requests in `answer`; thread-safe."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._failures: list[Answer] = []
        self._httpd = _Server(_handler(self), tls)

    @property
    def url(self) -> str:
        return self._httpd.url

    @property
    def host(self) -> str:
        return self._httpd.host

    def start(self) -> None:
        self._httpd.start()

    def stop(self) -> None:
        self._httpd.stop()

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def fail_next(self, status: int, body: dict[str, Any], count: int = 1) -> None:
        """Answer the next `count` requests with `status` and `body`, whatever they ask."""
        with self._lock:
            self._failures.extend([(status, body)] * count)

    def answer(self, method: str, path: str, form: dict[str, str]) -> Answer:
        raise NotImplementedError

    def _handle(self, method: str, path: str, form: dict[str, str]) -> Answer:
        with self._lock:
            self._received.append(Received(method=method, path=path, form=form))
            failure = self._failures.pop(0) if self._failures else None
        return failure or self.answer(method, path, form)


def _handler(stand_in: StandIn) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self._reply("GET", {})

        def do_POST(self) -> None:
            fields = urllib.parse.parse_qsl(self.read_body().decode(), keep_blank_values=True)
            self._reply("POST", dict(fields))

        def _reply(self, method: str, form: dict[str, str]) -> None:
            path = urllib.parse.urlsplit(self.path).path
            status, body = stand_in._handle(method, path, form)
            self.send_bytes(status, json.dumps(body).encode())

    return Handler
