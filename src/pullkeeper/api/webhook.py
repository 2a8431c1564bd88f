"""The webhook listener's application: AdmissionReviews, and nothing of the REST API, the
pages or the metrics.

`pullkeeper serve --webhook-port` runs it on its own TLS listener, so the API's port
never answers a review: a review tells the Secret names and policy of a namespace, and a
denial writes an audit record in the name the review gives. The application owns the
admission index and the audit records' writer: started with the listener, stopped with it
(the queued records written first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from pullkeeper.api.routes.admission import AdmissionLayer
from pullkeeper.services import admission
from pullkeeper.services.server import Server


async def _not_here(_: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = (
        "this listener serves the admission webhook only: POST an AdmissionReview to "
        "/admission/mutate[/CLUSTER] or /admission/validate[/CLUSTER]"
    )
    error = {"code": "not_found" if status == 404 else "error", "message": message, "field": None}
    return JSONResponse({"error": error}, status_code=status)


def create_webhook_app(server: Server) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        hook = admission.start(server)
        try:
            yield
        finally:
            # The queued audit records are written before the store is closed.
            await anyio.to_thread.run_sync(hook.stop)

    # No routes: whatever the admission layer does not answer is a 404.
    app = Starlette(lifespan=lifespan, exception_handlers={HTTPException: _not_here})
    # In front of the application rather than as its middleware: a review skips the
    # application's own error middleware and scope handling.
    return AdmissionLayer(app, server=server, limit=server.settings.max_body_bytes)
