"""An error Starlette re-raises after answering reaches the HTTP server only if nothing was
answered: the handler that answered it has logged it already."""

from __future__ import annotations

from typing import Any

import pytest
from tests.tools import run_async

from pullkeeper.app import AnsweredOnce


def _call(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run_async(AnsweredOnce(app)({"type": "http"}, receive, send))
    return sent


def test_an_error_after_the_answer_stays_with_the_application() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"generic"})
        raise RuntimeError("logged by the handler already")

    assert [m.get("status") for m in _call(app)] == [500, None]


def test_an_error_before_any_answer_reaches_the_server() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("nothing answered")

    with pytest.raises(RuntimeError, match="nothing answered"):
        _call(app)


def test_an_answer_without_error_passes_unchanged() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    assert _call(app) == [
        {"type": "http.response.start", "status": 204, "headers": []},
        {"type": "http.response.body", "body": b""},
    ]
