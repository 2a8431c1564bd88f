"""The REST API's application: its routes, its JSON errors, the body limit, health and metrics.

The server's one application (pullkeeper.app) is this one with the web pages mounted on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pullkeeper import __version__
from pullkeeper.api.openapi import describe_answers
from pullkeeper.api.routes import (
    access,
    checks,
    cluster_access,
    clusters,
    credentials,
    keys,
    nodes,
    policies,
    workloads,
)
from pullkeeper.services import cloud_tokens, sync, token_refresh
from pullkeeper.services.admission_audit import ATTEMPTS
from pullkeeper.services.errors import ServiceError, TooManyRequests
from pullkeeper.services.server import Server
from pullkeeper.services.server_slots import RunningAdmission

log = logging.getLogger("pullkeeper.api")
API = "/api/v1"


def error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}},
        status_code=status,
        headers=headers,
    )


class BodyLimit:
    """Refuse NUL in URLs (422) and bodies over the limit (413, with or without Content-Length).

    The body is read here, up to the limit, before the application sees any of
    it: FastAPI would turn an error raised while it reads into a 400.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("raw_path", b"").lower() or b"%00" in scope.get("query_string", b""):
            nul = error(422, "invalid", "the URL must not contain NUL characters (%00)")
            await nul(scope, receive, send)
            return
        too_big = error(413, "too_large", f"the request body exceeds {self.limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await too_big(scope, receive, send)
                return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await too_big(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class Measure:
    """Count requests and time them, labelled by route template (plain ASGI: cheap)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The route's template, not the URL, so ids do not explode the label set.
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            if route is not None and scope["path"].startswith(API) and not path.startswith(API):
                path = API + path
            self.requests.labels(scope["method"], path, str(status)).inc()
            self.latency.labels(scope["method"], path).observe(time.perf_counter() - start)


class _AdmissionAudit(Collector):
    """What became of the admission webhook's audit records, read at scrape time."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        hook = self.server.admission
        for name, what, read in _AUDIT_COUNTERS:
            yield CounterMetricFamily(name, what, value=read(hook) if hook is not None else 0)
        yield GaugeMetricFamily(
            "pullkeeper_admission_audit_queued",
            "Admission audit records queued, not written yet.",
            value=hook.audit_queued if hook is not None else 0,
        )


_AUDIT_COUNTERS: tuple[tuple[str, str, Callable[[RunningAdmission], int]], ...] = (
    (
        "pullkeeper_admission_audit_dropped",
        "Admission audit records not written: over admission_audit_per_minute for their namespace.",
        lambda hook: hook.audit_dropped,
    ),
    (
        "pullkeeper_admission_audit_overflow",
        "Admission audit records not written: the queue (admission_audit_queue) was full.",
        lambda hook: hook.audit_overflow,
    ),
    (
        "pullkeeper_admission_audit_write_errors",
        f"Writes of queued admission audit records the store refused (a batch is tried "
        f"{ATTEMPTS} times).",
        lambda hook: hook.audit_write_errors,
    ),
    (
        "pullkeeper_admission_audit_lost",
        f"Admission audit records not written: the store refused their batch {ATTEMPTS} times.",
        lambda hook: hook.audit_lost,
    ),
)


class _Tokens(Collector):
    """Cloud credentials' token expiries (from the store) and this replica's refreshes."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        refreshes = CounterMetricFamily(
            "pullkeeper_token_refresh",
            "Token refreshes of cloud credentials by this replica, by result (refreshed, "
            "unchanged, failed, skipped).",
            labels=["result"],
        )
        results = self.server.refresher.results if self.server.refresher is not None else {}
        for result in token_refresh.RESULTS:
            refreshes.add_metric([result], results.get(result, 0))
        yield refreshes
        expiry = GaugeMetricFamily(
            "pullkeeper_token_expiry_timestamp_seconds",
            "When the current token of each credential holding a cloud identity expires "
            "(Unix time).",
            labels=["credential", "name"],
        )
        with self.server.reading() as session:
            for credential_id, name, at in cloud_tokens.expiries(session):
                expiry.add_metric([credential_id, name], at.timestamp())
        yield expiry


def _metrics(app: FastAPI, server: Server) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "pullkeeper_http_requests_total",
        "HTTP requests served.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "pullkeeper_http_request_seconds",
        "HTTP request latency.",
        ["method", "route"],
        registry=registry,
    )
    by_state = Gauge(
        "pullkeeper_credentials", "Credentials by state.", ["state"], registry=registry
    )

    delivered = Gauge(
        "pullkeeper_sync_secrets",
        "Delivered Secrets by sync state (in_sync, pending, conflict, error).",
        ["state"],
        registry=registry,
    )
    unreachable = Gauge(
        "pullkeeper_sync_clusters_failing",
        "Clusters the sync cannot currently reach or list.",
        registry=registry,
    )
    leading = Gauge(
        "pullkeeper_sync_leader",
        "1 when this replica holds the sync lease and syncs the clusters, else 0.",
        registry=registry,
    )

    reviews = Gauge(
        "pullkeeper_admission_reviews",
        "AdmissionReviews answered since start, by webhook and result "
        "(patched, unchanged, passed, allowed, denied, warned, audited, undecided, malformed).",
        ["webhook", "result"],
        registry=registry,
    )

    registry.register(_AdmissionAudit(server))
    registry.register(_Tokens(server))

    app.add_middleware(Measure, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        with server.reading() as session:
            counts = server.credential_counts(session)
        for state in ("active", "inactive"):
            by_state.labels(state).set(counts.get(state, 0))
        if server.sync is not None:
            for state, n in server.sync.statuses.counts().items():
                delivered.labels(state).set(n)
            unreachable.set(len(server.sync.statuses.errors()))
            leading.set(1 if server.sync.leading else 0)
        if server.admission is not None:
            for (webhook, result), n in server.admission.snapshot().items():
                reviews.labels(webhook, result).set(n)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """No route, a wrong method, a body the framework could not read."""
    code = {
        400: "bad_request",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
    }.get(exc.status_code, "error")
    message = str(exc.detail)
    if isinstance(exc.__cause__, RecursionError):  # the framework could not parse the body
        message = "the body nests too deeply to be read; send a flatter document"
    return error(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, never the input's fault: the server log has the traceback, the client no details."""
    log.error(
        "unexpected error: %s in %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return error(500, "internal", "internal error; the server log has the details")


def create_api(server: Server) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool; on few cores, more threads only fight
        # over the GIL and stretch every request.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = server.settings.request_threads
        manager = sync.start(server) if server.settings.sync else None
        refresher = token_refresh.start(server) if server.settings.token_refresh else None
        try:
            yield
        finally:
            if refresher is not None:
                refresher.stop()
            if manager is not None:
                manager.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="pullkeeper",
        version=__version__,
        description="Private registry credentials and pull policy for Kubernetes.",
        openapi_url="/api/v1/openapi.json",
        # The docs page is the web UI's (web/apidocs.py): FastAPI's loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.server = server

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        )
        return error(exc.status, exc.code, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            return error(400, "bad_request", f"the body is not valid JSON: {message}")
        return error(422, "invalid", f"{field}: {message}" if field else message, field)

    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(Exception)(unexpected)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            server.ping()
        except Exception as e:  # any store failure means "not ready"
            return error(503, "not_ready", f"the store is not reachable: {type(e).__name__}")
        return JSONResponse({"status": "ready"})

    # Middleware added later wraps what was added before: metrics see the 413s.
    app.add_middleware(BodyLimit, limit=server.settings.max_body_bytes)
    _metrics(app, server)
    for module in (
        *(access, clusters, credentials, policies, checks, workloads, keys, nodes),
        cluster_access,
    ):
        app.include_router(module.router, prefix=API)
    describe_answers(app)
    # The admission webhook is not here: it has a listener of its own (api/webhook.py).
    return app
