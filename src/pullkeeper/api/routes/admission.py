"""The admission webhook: AdmissionReview v1 in, AdmissionReview out (no API token: the
Kubernetes API server calls it over TLS).

Served by a plain ASGI layer in front of the application: a review is decided in
memory in about 0.1 ms, and routing it through the framework's request, body and
response machinery would cost several times that, on every pod created in the
cluster. The contract is Kubernetes' AdmissionReview, not part of the REST API's
OpenAPI description.
"""

from __future__ import annotations

import json
from typing import Any

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from pullkeeper.services.admission import BadReview, parse_review

WEBHOOKS = ("mutate", "validate")


def route(path: str) -> tuple[str, str | None] | None:
    """The webhook and the cluster a path names: /admission/WEBHOOK[/CLUSTER]."""
    parts = path.split("/")
    if len(parts) not in (3, 4) or parts[:2] != ["", "admission"] or parts[2] not in WEBHOOKS:
        return None
    cluster = parts[3] if len(parts) == 4 else None
    return (parts[2], cluster) if cluster != "" else None


class AdmissionLayer:
    def __init__(self, app: ASGIApp, server: Any, limit: int) -> None:
        self.app, self.server, self.limit = app, server, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = route(scope.get("path", "")) if scope["type"] == "http" else None
        if target is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                await _send(
                    send, 413, _error("too_large", f"the review exceeds {self.limit} bytes")
                )
                return
            if not message.get("more_body"):
                break
        status, answer = await self._decide(*target, bytes(body))
        await _send(send, status, answer)

    async def _decide(self, webhook: str, cluster: str | None, body: bytes) -> tuple[int, Any]:
        hook = self.server.admission
        try:
            review = parse_review(body)
        except BadReview as e:
            return 400, _error("bad_request", str(e))
        if hook is None:
            return 503, _error("unavailable", "the webhook is off")
        if webhook == "mutate" and hook.index.ready.is_set():
            return 200, hook.mutate(review, cluster)  # in memory: no thread hand-off
        # Validation may write an audit record; either may wait for the index to be built.
        decide = hook.mutate if webhook == "mutate" else hook.validate
        return 200, await to_thread.run_sync(decide, review, cluster)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": None}}


async def _send(send: Send, status: int, doc: Any) -> None:
    payload = json.dumps(doc, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
