"""AWS on loopback: moto's ECR, STS and IAM, corrected where moto and AWS disagree.

moto answers GetAuthorizationToken with the same token every time and an expiry in 2015,
and answers a JSON-protocol service's (ECR's) errors in the XML of query-protocol
services (STS's). ECR gives a new token each call, good for 12 hours, and its errors are
JSON (`{"__type": "AccessDeniedException", "message": ...}`); the stand-in does too
(tests/cloud/test_ecr.py pins both). Served on 127.0.0.1 by a loop that ends by itself.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from moto import settings
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

_TOKEN_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
_XML_ERROR = re.compile(
    r"<Code>(?P<code>[^<]+)</Code>.*?<Message>(?P<message>[^<]*)</Message>", re.S
)
# The names ECR gives the errors moto names as STS does.
_JSON_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}

StartResponse = Callable[..., Any]


@dataclass
class Aws:
    """The stand-in's address, and the ECR passwords it issued (newest last)."""

    url: str
    lifetime: timedelta = timedelta(hours=12)
    issued: list[str] = field(default_factory=list)

    @contextmanager
    def enforcing_iam(self) -> Iterator[None]:
        """Requests are judged by IAM policies (moto lets every request through otherwise)."""
        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        try:
            yield
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before


class _AsAws:
    """Wraps moto's WSGI application with ECR's own behaviour where moto's differs."""

    def __init__(self, app: Callable[..., Iterable[bytes]], aws: Aws) -> None:
        self.app, self.aws = app, aws

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        answered: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            answered.update(status=status, headers=headers)

        body = b"".join(self.app(environ, keep))
        status, headers = answered["status"], answered["headers"]
        if target and not status.startswith("2"):
            found = _XML_ERROR.search(body.decode(errors="replace"))
            if found:  # a JSON-protocol service answers its errors in JSON
                code = _JSON_CODES.get(found["code"], found["code"])
                body = json.dumps({"__type": code, "message": found["message"]}).encode()
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
                headers.append(("Content-Type", "application/x-amz-json-1.1"))
        elif target == _TOKEN_TARGET and status.startswith("2"):
            body = self._fresh_tokens(body)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _fresh_tokens(self, body: bytes) -> bytes:
        answer = json.loads(body)
        expires = (datetime.now(UTC) + self.aws.lifetime).timestamp()
        for data in answer["authorizationData"]:
            password = secrets.token_urlsafe(48)
            self.aws.issued.append(password)
            data["authorizationToken"] = base64.b64encode(f"AWS:{password}".encode()).decode()
            data["expiresAt"] = expires
        return json.dumps(answer).encode()


@contextmanager
def serve(limit: float = 600.0) -> Iterator[Aws]:
    """The stand-in, served until the block ends (or `limit` seconds, whichever is first)."""
    server = make_server(
        "127.0.0.1",
        0,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    aws = Aws(f"http://127.0.0.1:{server.server_address[1]}")
    server.app = _AsAws(server.app, aws)
    server.timeout = 0.1
    stop = threading.Event()
    deadline = time.monotonic() + limit

    def loop() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            server.handle_request()

    thread = threading.Thread(target=loop, name="aws-stand-in", daemon=True)
    thread.start()
    try:
        # moto keeps its state per process: each stand-in starts from none.
        httpx.post(f"{aws.url}/moto-api/reset", timeout=10).raise_for_status()
        yield aws
    finally:
        stop.set()
        thread.join()
        server.server_close()
