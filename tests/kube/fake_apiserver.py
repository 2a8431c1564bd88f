"""A fake Kubernetes API server: the real REST wire protocol on 127.0.0.1, an in-memory store.

    with FakeApiServer() as kube:
        kube.kubeconfig(tmp_path / "config")      # for lightkube and kubectl alike
        kube.inject("GET", r"/secrets/", 403)     # the next matching request is refused
        kube.count(verb="patch", resource="secrets")

What it serves: namespaces, secrets, serviceaccounts, pods, events, configmaps (core v1),
deployments, replicasets, statefulsets and daemonsets (apps/v1), leases
(coordination.k8s.io/v1), with GET, LIST (namespaced and across namespaces, label and field
selectors, limit/continue), WATCH, POST, PUT, PATCH (json, merge, strategic merge, apply),
DELETE and DELETE of a collection; the discovery documents, /version, an OpenAPI v3 index,
and Table output for `kubectl get`.
See the sibling modules for the rules each part follows and what each leaves out.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.kube import errors, protobuf, resources, tables, watching
from tests.kube.api import Api
from tests.kube.errors import ApiFailure
from tests.kube.resources import Resource
from tests.kube.store import Store
from tests.registry.httpd import LocalHTTPServer, QuietHandler

Obj = dict[str, Any]

MAX_WATCH_SECONDS = 60
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True)
class Route:
    res: Resource
    namespace: str | None  # None: cluster-scoped, or a namespaced LIST/WATCH across namespaces
    name: str | None
    subresource: str | None


@dataclass
class RequestRecord:
    """One request as the server saw it; `verb` is the Kubernetes verb (get, list, watch,
    create, update, patch, delete, deletecollection) or None for discovery and other paths."""

    method: str
    path: str
    query: dict[str, str]
    verb: str | None
    resource: str | None
    namespace: str | None
    name: str | None
    status: int = 0
    content_type: str | None = None
    injected: bool = False


@dataclass
class _Injection:
    method: str
    path: re.Pattern[str]
    status: int
    times: int | None
    headers: dict[str, str]
    body: Any
    reason: str | None
    message: str | None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and bool(self.path.search(path))


@dataclass
class _Drop:
    times: int
    method: str
    path: re.Pattern[str]


@dataclass
class _Controls:
    injections: list[_Injection] = field(default_factory=list)
    drops: list[_Drop] = field(default_factory=list)
    log: list[RequestRecord] = field(default_factory=list)


def route(path: str) -> Route | None:
    """The resource a path names, or None for anything else (discovery, unknown)."""
    m = re.match(r"^/(?:api/(v1)|apis/([^/]+)/([^/]+))/(.+)$", path)
    if not m:
        return None
    group = m.group(2) or ""
    version = m.group(1) or m.group(3)
    parts = m.group(4).strip("/").split("/")
    namespace: str | None = None
    if parts[0] == "namespaces" and len(parts) >= 3:
        candidate = resources.lookup(group, version, parts[2])
        if candidate is not None and candidate.namespaced:
            namespace, parts = parts[1], parts[2:]
    res = resources.lookup(group, version, parts[0])
    if res is None or len(parts) > 3:
        return None
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if sub is not None and sub not in res.subresources:
        return None
    if res.plural == "namespaces" and name is not None:
        namespace = None
    return Route(res, namespace, name, sub)


def classify(method: str, r: Route | None, query: dict[str, str]) -> str | None:
    if r is None:
        return None
    if method == "GET":
        if r.name is not None:
            return "get"
        return "watch" if query.get("watch") in ("1", "true") else "list"
    if method == "DELETE":
        return "delete" if r.name is not None else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)


class _Handler(QuietHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def read_request_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.read_body()


class _HTTPServer(LocalHTTPServer):
    def __init__(self, fake: FakeApiServer) -> None:
        self.fake = fake
        super().__init__(_Handler)


class FakeApiServer:
    """The fake. `start()`/`stop()`, or use it as a context manager."""

    def __init__(
        self,
        token: str | None = None,
        create_default_serviceaccount: bool = True,
        history_limit: int = 1000,
        max_watch_seconds: float = MAX_WATCH_SECONDS,
        bookmark_interval: float = 5.0,
        user: str = "system:serviceaccount:pullkeeper:pullkeeper",
        namespaces: tuple[str, ...] = ("default", "kube-system"),
    ) -> None:
        self.token = token
        self.user = user
        self.max_watch_seconds = max_watch_seconds
        self.bookmark_interval = bookmark_interval
        self.store = Store(history_limit)
        self.api = Api(self.store, create_default_serviceaccount)
        self._controls = _Controls()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http: _HTTPServer | None = None
        self.simulator: Any = None
        for ns in namespaces:
            self.create("namespaces", {"metadata": {"name": ns}})

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        self._http = _HTTPServer(self)
        self._http.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.store.close()
        if self.simulator is not None:
            self.simulator.stop()
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._http is not None, "the fake is not started"
        return self._http.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(
        self,
        path: str | Path,
        context: str = "fake",
        token: str | None = None,
        namespace: str | None = None,
    ) -> Path:
        """Write a kubeconfig for this server (the fake's token unless `token` is given)."""
        token = token if token is not None else self.token
        user: Obj = {"token": token} if token else {}
        ctx: Obj = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    # --- controls for tests ---------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` requests (None: all, until `clear_injections`) whose method
        is `method` ("*" for any) and whose path matches `path_regex` with `status`: by default
        a Status body worded as the real server would (403 an RBAC denial, 429 with
        Retry-After: 1); `body` (dict or bytes) replaces it."""
        hdrs = dict(headers or {})
        if status == 429:
            hdrs.setdefault("Retry-After", "1")
        with self._lock:
            self._controls.injections.append(
                _Injection(
                    method.upper(),
                    re.compile(path_regex),
                    status,
                    times,
                    hdrs,
                    body,
                    reason,
                    message,
                )
            )

    def clear_injections(self) -> None:
        with self._lock:
            self._controls.injections.clear()
            self._controls.drops.clear()

    def drop_connections(self, times: int = 1, method: str = "*", path_regex: str = "") -> None:
        """Close the connection of the next `times` matching requests after reading them,
        sending nothing back (what a client sees when the server or network goes away)."""
        with self._lock:
            self._controls.drops.append(_Drop(times, method.upper(), re.compile(path_regex)))

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._controls.log)

    def count(
        self, verb: str | None = None, resource: str | None = None, namespace: str | None = None
    ) -> int:
        """Requests seen since the last `reset_counts`; verb "write" counts every write."""
        verbs = WRITE_VERBS if verb == "write" else (verb,)
        return sum(
            1
            for r in self.requests
            if (verb is None or r.verb in verbs)
            and (resource is None or r.resource == resource)
            and (namespace is None or r.namespace == namespace)
        )

    def reset_counts(self) -> None:
        with self._lock:
            self._controls.log.clear()

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """The stored objects (copies) of a resource, e.g. `objects("secrets", "team-a")`."""
        return self.store.list(resources.resource_for(resource).plural, namespace)

    def get(self, resource: str, name: str, namespace: str = "") -> Obj | None:
        res = resources.resource_for(resource)
        return self.store.get(res.plural, namespace if res.namespaced else "", name)

    def create(self, resource: str, obj: Obj, namespace: str | None = None) -> Obj:
        """Create an object directly, with the API's defaulting and validation, unlogged."""
        res = resources.resource_for(resource)
        ns = namespace or obj.get("metadata", {}).get("namespace") or "default"
        return self.api.create(res, ns if res.namespaced else "", obj, manager="fake-seed")

    def replace(self, resource: str, obj: Obj) -> Obj:
        """Replace an object (PUT), at the resourceVersion it carries if it carries one."""
        res = resources.resource_for(resource)
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if res.namespaced else ""
        return self.api.update(res, ns, meta["name"], obj, manager="fake-seed")

    def delete(self, resource: str, name: str, namespace: str = "") -> None:
        res = resources.resource_for(resource)
        self.api.delete(res, namespace if res.namespaced else "", name)

    def compact(self) -> None:
        """Drop the watch history: a watch from an older resourceVersion then gets 410 Gone."""
        self.store.compact()

    @property
    def resource_version(self) -> int:
        """The store's current resourceVersion: unchanged means nothing was written."""
        return self.store.rv

    def simulate(
        self, pull: Callable[[str, str, list[str]], tuple[bool, str]], **options: Any
    ) -> Any:
        """Turn on the controller/kubelet simulator (see simulator.py); returns it."""
        from tests.kube.simulator import Simulator

        if self.simulator is None:
            self.simulator = Simulator(self.store, self.api, pull, **options)
            self.simulator.start()
        return self.simulator

    # --- HTTP -----------------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        r = route(path)
        record = RequestRecord(
            method=h.command,
            path=path,
            query=query,
            verb=classify(h.command, r, query),
            resource=r.res.plural if r else None,
            namespace=r.namespace if r else None,
            name=r.name if r else None,
            content_type=h.headers.get("Content-Type"),
        )
        body = h.read_request_body()
        with self._lock:
            self._controls.log.append(record)
            drop = self._take_drop(h.command, path)
            injection = None if drop else self._take_injection(h.command, path)
        if drop:
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if injection is not None:
            record.injected = True
            record.status = injection.status
            self._send_injection(h, injection, r, record)
            return
        if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
            record.status = 401
            self._send(h, 401, errors.status_body(401, "Unauthorized"))
            return
        try:
            if r is None:
                status, payload = self._non_resource(h.command, path)
            elif record.verb == "watch":
                record.status = 200
                self._stream_watch(h, r, query)
                return
            else:
                status, payload = self._resource(h, r, record.verb or "", query, body)
        except ApiFailure as failure:
            record.status = failure.code
            self._send(h, failure.code, failure.status(), failure.headers)
            return
        except Exception as e:  # a bug in the fake: say so as a real server would
            record.status = 500
            self._send(h, 500, errors.status_body(500, f"fake apiserver error: {e!r}"))
            raise
        record.status = status
        self._send(h, status, payload)

    def _take_drop(self, method: str, path: str) -> bool:
        for drop in self._controls.drops:
            if drop.times > 0 and drop.method in ("*", method) and drop.path.search(path):
                drop.times -= 1
                return True
        return False

    def _take_injection(self, method: str, path: str) -> _Injection | None:
        for inj in self._controls.injections:
            if inj.matches(method, path) and (inj.times is None or inj.hits < inj.times):
                inj.hits += 1
                return inj
        return None

    def _send_injection(
        self, h: _Handler, inj: _Injection, r: Route | None, record: RequestRecord
    ) -> None:
        if isinstance(inj.body, bytes):
            h.send_bytes(inj.status, inj.body, list(inj.headers.items()))
            return
        if inj.body is not None:
            self._send(h, inj.status, inj.body, inj.headers)
            return
        message = inj.message
        details: Obj | None = None
        if message is None:
            if inj.status == 403:
                message = errors.forbidden_for(
                    self.user,
                    record.verb or "get",
                    r.res if r else None,
                    record.namespace,
                    record.name,
                )
            elif inj.status == 429:
                message = "Too many requests, please try again later."
                details = {"retryAfterSeconds": int(inj.headers.get("Retry-After", "1"))}
            elif inj.status == 409 and r is not None and r.name:
                failure = errors.conflict(r.res, r.name)
                message, details = failure.message, failure.details
            else:
                message = f"injected failure {inj.status}"
        if details is None and r is not None and r.name:
            details = {"name": r.name, "kind": r.res.plural}
            if r.res.group:
                details["group"] = r.res.group
        body = errors.status_body(inj.status, message, inj.reason, details)
        self._send(h, inj.status, body, inj.headers)

    @staticmethod
    def _send(
        h: _Handler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        hdrs = [("Content-Type", "application/json"), *(headers or {}).items()]
        with contextlib.suppress(OSError):
            h.send_bytes(status, data, hdrs)

    def _non_resource(self, method: str, path: str) -> tuple[int, Any]:
        if method != "GET":
            raise ApiFailure(405, "the server does not allow this method on the requested resource")
        doc: Any = None
        if path == "/version":
            doc = resources.SERVER_VERSION
        elif path in ("/healthz", "/readyz", "/livez"):
            doc = "ok"
        elif path == "/api":
            doc = resources.api_versions(f"127.0.0.1:{self.port}")
        elif path == "/apis":
            doc = resources.api_group_list()
        elif path == "/openapi/v3":
            doc = resources.openapi_v3_root()
        elif path.startswith("/openapi/v3/"):
            doc = resources.openapi_v3_document(path.removeprefix("/openapi/v3/"))
        elif m := re.match(r"^/api/(v1)$", path):
            doc = resources.api_resource_list("", m.group(1))
        elif m := re.match(r"^/apis/([^/]+)/([^/]+)$", path):
            doc = resources.api_resource_list(m.group(1), m.group(2))
        elif m := re.match(r"^/apis/([^/]+)$", path):
            doc = resources.api_group(m.group(1))
        if doc is None:
            raise ApiFailure(404, "the server could not find the requested resource")
        return 200, doc

    def _manager(self, h: _Handler, query: dict[str, str], default_from_agent: bool) -> str | None:
        if query.get("fieldManager"):
            return query["fieldManager"]
        if not default_from_agent:
            return None
        agent = h.headers.get("User-Agent") or "unknown"
        return agent.split("/", 1)[0]

    def _resource(
        self, h: _Handler, r: Route, verb: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        ns = r.namespace or ""
        dry = query.get("dryRun") == "All"
        api = self.api
        if r.res.namespaced and r.namespace is None and verb not in ("list", "deletecollection"):
            raise ApiFailure(404, "the server could not find the requested resource")
        if verb == "get":
            return 200, self._maybe_table(h, r.res, [api.get(r.res, ns, r.name or "")], query)
        if verb == "list":
            listed = api.list(r.res, r.namespace, query)
            if self._wants_table(h):
                return 200, tables.table(
                    r.res.plural,
                    listed["items"],
                    listed["metadata"],
                    query.get("includeObject", "Metadata"),
                )
            return 200, listed
        if verb == "deletecollection":
            return 200, api.delete_collection(r.res, r.namespace, query, dry)
        parsed = None
        if verb in ("create", "update", "delete"):
            if "protobuf" in (h.headers.get("Content-Type") or ""):
                parsed = protobuf.decode(body)
            else:
                parsed = self._json(body)
        if verb == "create":
            if r.name is not None:
                raise ApiFailure(
                    405, "the server does not allow this method on the requested resource"
                )
            manager = self._manager(h, query, True) or "unknown"
            return 201, api.create(r.res, ns, parsed, manager, dry)
        if verb == "update":
            manager = self._manager(h, query, True) or "unknown"
            return 200, api.update(r.res, ns, r.name or "", parsed, manager, r.subresource, dry)
        if verb == "patch":
            content_type = h.headers.get("Content-Type") or ""
            manager = self._manager(h, query, "apply-patch" not in content_type)
            obj = api.patch(
                r.res,
                ns,
                r.name or "",
                content_type,
                body,
                manager,
                r.subresource,
                dry,
                query.get("force") == "true",
            )
            return 200, obj
        if verb == "delete":
            return 200, api.delete(r.res, ns, r.name or "", parsed, dry)
        raise ApiFailure(405, "the server does not allow this method on the requested resource")

    @staticmethod
    def _json(body: bytes) -> Any:
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            try:
                return yaml.safe_load(body)
            except yaml.YAMLError as e:
                raise errors.bad_request(f"error decoding the body: {e}") from None

    @staticmethod
    def _wants_table(h: _Handler) -> bool:
        return "as=Table" in (h.headers.get("Accept") or "")

    def _maybe_table(
        self, h: _Handler, res: Resource, items: list[Obj], query: dict[str, str]
    ) -> Any:
        if self._wants_table(h):
            meta = {"resourceVersion": items[0]["metadata"].get("resourceVersion", "")}
            return tables.table(res.plural, items, meta, query.get("includeObject", "Metadata"))
        return items[0]

    def _stream_watch(self, h: _Handler, r: Route, query: dict[str, str]) -> None:
        try:
            timeout = float(query.get("timeoutSeconds") or self.max_watch_seconds)
        except ValueError:
            raise errors.bad_request("timeoutSeconds must be a number") from None
        timeout = min(max(timeout, 0.0), self.max_watch_seconds)
        rv = query.get("resourceVersion") or "0"
        if not rv.isdigit():
            raise errors.bad_request(f'Invalid value: "{rv}": resourceVersion must be an integer')
        req = watching.WatchRequest(r.res, r.namespace, query)
        table = self._wants_table(h)
        include = query.get("includeObject", "Metadata")
        stream = watching.events(
            self.store, req, timeout, self.bookmark_interval, self._stopping.is_set
        )
        # The connection stays open after the stream's last chunk, as the real server's does:
        # clients send their next request on it.
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.wfile.flush()
            for event in stream:
                sent = event
                if table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    obj = event["object"]
                    meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                    sent = {**event, "object": tables.table(r.res.plural, [obj], meta, include)}
                _write_chunk(h, json.dumps(sent, separators=(",", ":")).encode() + b"\n")
            _write_chunk(h, b"")
        except OSError:
            pass  # the client went away
        finally:
            _close(stream)


def _write_chunk(h: _Handler, data: bytes) -> None:
    h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    h.wfile.flush()


def _close(stream: Iterator[Obj]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
