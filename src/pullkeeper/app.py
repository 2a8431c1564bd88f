"""The server's one HTTP application: the REST API with the web pages mounted on it.

Neither face knows the other; here they meet. An error no route handled is answered in
the asker's terms: an error page for a browser asking for a page, the API's JSON envelope
for everything else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pullkeeper import web
from pullkeeper.api import app as api
from pullkeeper.services.server import Server
from pullkeeper.settings import Settings
from pullkeeper.web.render import server_error_page, unanswered_page, wants_page

__all__ = ["create_app", "openapi_document"]


def create_app(server: Server) -> FastAPI:
    app = api.create_api(server)
    web.mount(app)

    # These replace the API's own handlers for the same errors, which answer in JSON only.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_page(request):
            return unanswered_page(request, exc.status_code, str(exc.detail))
        return await api.http_error(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        answer = await api.unexpected(request, exc)  # logged there, whoever asked
        return server_error_page(request) if wants_page(request) else answer

    return app


class AnsweredOnce:
    """Starlette re-raises an error after its handler has answered it, for the server to log;
    the handler logged it already, with the request it came from, so the HTTP server does not
    log it a second time. An error before any answer still reaches the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answered = False

        async def watched(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if not answered:
                raise


def openapi_document() -> dict[str, Any]:
    """The document the server serves at /api/v1/openapi.json, built in-process from a
    throwaway data directory (no server, no network): for the docs and the API fuzz tests."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Settings.load(data=Path(tmp)))
        try:
            return create_app(server).openapi()
        finally:
            server.close()
