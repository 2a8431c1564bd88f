"""The admission webhook: AdmissionReview v1 in, AdmissionReview out (no API token: the
Kubernetes API server calls it over TLS, with a client certificate when
`webhook_client_ca` is set).

Served by a plain ASGI layer in front of the webhook listener's application
(api/webhook.py), never on the API's port: a review is decided in memory in
about 0.1 ms, and routing it through the framework's request, body and response
machinery would cost several times that, on every pod created in the cluster.
For the same reason the body is read without copying when it comes in one piece
(it almost always does), and a review is decided on the event loop once the
index is built: deciding reads memory only (the audit records a validation
leaves are queued, services/admission_audit.py); only a review that must wait
for the index's first build goes to a thread.
The contract is Kubernetes' AdmissionReview, not part of the REST API's OpenAPI
description.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from pullkeeper.services.admission import BadReview, encode_review, parse_review
from pullkeeper.services.server import Server

log = logging.getLogger("pullkeeper.admission")
WEBHOOKS = ("mutate", "validate")
_JSON = (b"content-type", b"application/json")


def route(path: str) -> tuple[str, str | None] | None:
    """The webhook and the cluster a path names: /admission/WEBHOOK[/CLUSTER]."""
    parts = path.split("/")
    if len(parts) not in (3, 4) or parts[:2] != ["", "admission"] or parts[2] not in WEBHOOKS:
        return None
    cluster = parts[3] if len(parts) == 4 else None
    return (parts[2], cluster) if cluster != "" else None


class AdmissionLayer:
    def __init__(self, app: ASGIApp, server: Server, limit: int) -> None:
        self.app, self.server, self.limit = app, server, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = route(scope.get("path", "")) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        if scope.get("method") != "POST":
            refused = _error("method_not_allowed", "a webhook takes AdmissionReviews by POST")
            await _send(send, 405, refused, [(b"allow", b"POST")])
            return
        body = await self._body(receive, send)
        if body is None:
            return
        try:
            status, answer = await self._decide(*target, body)
        except Exception as e:  # a bug, never the input's fault: one line, no traceback
            log.error("admission: unexpected error: %s", type(e).__name__)
            status, answer = (
                500,
                _error("internal", "internal error; the server log has the details"),
            )
        await _send(send, status, answer)

    async def _body(self, receive: Receive, send: Send) -> bytes | None:
        """The request's body; None when the client went away or it was refused as too
        large (the 413 sent)."""
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        body: bytes = message.get("body", b"")
        if message.get("more_body"):  # in pieces: gathered, the limit checked as they come
            gathered = bytearray(body)
            while len(gathered) <= self.limit:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                gathered += message.get("body", b"")
                if not message.get("more_body"):
                    break
            body = bytes(gathered)
        if len(body) > self.limit:
            await _send(send, 413, _error("too_large", f"the review exceeds {self.limit} bytes"))
            return None
        return body

    async def _decide(
        self, webhook: str, cluster: str | None, body: bytes
    ) -> tuple[int, bytes | dict[str, Any]]:
        hook = self.server.admission
        try:
            review = parse_review(body)
        except BadReview as e:
            return 400, _error("bad_request", str(e))
        if hook is None:
            return 503, _error("unavailable", "the webhook is off")
        decide = hook.mutate if webhook == "mutate" else hook.validate
        if hook.decides_in_memory:
            return 200, encode_review(decide(review, cluster))  # no thread hand-off
        # A decision that waits for the index's first build, or reads the store: never on
        # the event loop.
        return 200, encode_review(await to_thread.run_sync(decide, review, cluster))


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": None}}


async def _send(
    send: Send,
    status: int,
    doc: bytes | dict[str, Any],
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    headers = [_JSON, (b"content-length", b"%d" % len(payload)), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
