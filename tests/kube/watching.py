"""WATCH: the events one watcher sees, from a resourceVersion on, until its time is up.

As on the real server: without a resourceVersion (or with "0") the watch starts with an ADDED
event per existing object; with one, it replays the changes after it, or answers a single
ERROR event carrying 410 Gone when that version is older than the kept history. An object
that stops matching the watcher's selectors arrives as DELETED, one that starts matching as
ADDED. BOOKMARKs (when allowed) come every `bookmark_interval` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.kube.errors import status_body
from tests.kube.resources import Resource
from tests.kube.selectors import field_matcher, label_matcher
from tests.kube.store import Change, Store

Obj = dict[str, Any]


@dataclass(frozen=True)
class WatchRequest:
    res: Resource
    namespace: str | None
    query: dict[str, str]


def _gone(rv: int, oldest: int) -> Obj:
    message = f"too old resource version: {rv} ({oldest})"
    return {"type": "ERROR", "object": status_body(410, message, "Expired")}


def _typed(res: Resource, obj: Obj) -> Obj:
    obj.setdefault("kind", res.kind)
    obj.setdefault("apiVersion", res.api_version)
    return obj


def events(
    store: Store,
    req: WatchRequest,
    timeout: float,
    bookmark_interval: float,
    stopping: Callable[[], bool],
) -> Iterator[Obj]:
    """The watch events for `req`, ending after `timeout` seconds or when `stopping()`."""
    res, query = req.res, req.query
    labels = label_matcher(query.get("labelSelector"))
    fields = field_matcher(res.plural, query.get("fieldSelector"))
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")

    def matches(obj: Obj | None) -> bool:
        return obj is not None and labels(obj["metadata"].get("labels") or {}) and fields(obj)

    def mine(change: Change) -> bool:
        return change.resource == res.plural and (
            not req.namespace or change.namespace == req.namespace
        )

    deadline = time.monotonic() + timeout
    requested = query.get("resourceVersion") or "0"
    with store.cond:
        if requested == "0":
            last = store.rv
            initial = [o for o in store.list(res.plural, req.namespace) if matches(o)]
        else:
            last, initial = int(requested), []
            if store.changes_after(last) is None:
                yield _gone(last, store.compacted_rv)
                return
    for obj in initial:
        yield {"type": "ADDED", "object": _typed(res, obj)}

    next_bookmark = time.monotonic() + bookmark_interval
    while not stopping():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        with store.cond:
            changes = store.changes_after(last)
            if changes is None:  # fell behind the history while streaming
                yield _gone(last, store.compacted_rv)
                return
            if not changes:
                wait = min(remaining, 0.5)
                if bookmarks:
                    wait = min(wait, max(0.0, next_bookmark - time.monotonic()))
                store.cond.wait(timeout=wait)
                changes = store.changes_after(last) or []
        for change in changes:
            last = change.rv
            if not mine(change):
                continue
            event = _event(change, matches)
            if event is not None:
                yield {"type": event, "object": _typed(res, change.obj)}
        if bookmarks and time.monotonic() >= next_bookmark:
            next_bookmark = time.monotonic() + bookmark_interval
            yield {
                "type": "BOOKMARK",
                "object": {
                    "kind": res.kind,
                    "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(last)},
                },
            }


def _event(change: Change, matches: Callable[[Obj | None], bool]) -> str | None:
    now, before = matches(change.obj), matches(change.old)
    if change.type == "DELETED":
        return "DELETED" if before else None
    if change.type == "ADDED":
        return "ADDED" if now else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None
