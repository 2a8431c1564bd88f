"""Server-side printing: the `Table` kubectl asks for with `Accept: ...;as=Table;...`.

Columns follow the real server's printers (pkg/printers/internalversion) for the common kinds,
without their wide (-o wide) columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def age(obj: Obj) -> str:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _pod_ready(obj: Obj) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: Obj) -> str:
    for s in (obj.get("status") or {}).get("containerStatuses") or []:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str((obj.get("status") or {}).get("phase", ""))


def _status(obj: Obj, key: str) -> int:
    return int((obj.get("status") or {}).get(key) or 0)


def _replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas") or 0)


Column = tuple[str, str, Callable[[Obj], Any]]

COLUMNS: dict[str, list[Column]] = {
    "namespaces": [("Status", "string", lambda o: (o.get("status") or {}).get("phase", ""))],
    "secrets": [
        ("Type", "string", lambda o: o.get("type", "")),
        ("Data", "string", lambda o: len(o.get("data") or {})),
    ],
    "serviceaccounts": [("Secrets", "string", lambda o: len(o.get("secrets") or []))],
    "pods": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        ("Restarts", "string", lambda o: 0),
    ],
    "configmaps": [("Data", "string", lambda o: len(o.get("data") or {}))],
    "deployments": [
        ("Ready", "string", lambda o: f"{_status(o, 'readyReplicas')}/{_replicas(o)}"),
        ("Up-to-date", "integer", lambda o: _status(o, "updatedReplicas")),
        ("Available", "integer", lambda o: _status(o, "availableReplicas")),
    ],
    "replicasets": [
        ("Desired", "integer", _replicas),
        ("Current", "integer", lambda o: _status(o, "replicas")),
        ("Ready", "integer", lambda o: _status(o, "readyReplicas")),
    ],
    "leases": [("Holder", "string", lambda o: (o.get("spec") or {}).get("holderIdentity", ""))],
}

EVENT_COLUMNS: list[Column] = [
    ("Last Seen", "string", age),
    ("Type", "string", lambda o: o.get("type", "")),
    ("Reason", "string", lambda o: o.get("reason", "")),
    (
        "Object",
        "string",
        lambda o: (
            f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
            f"{(o.get('involvedObject') or {}).get('name', '')}"
        ),
    ),
    ("Message", "string", lambda o: o.get("message", "")),
]


def _columns(resource: str) -> list[Column]:
    if resource == "events":
        return EVENT_COLUMNS
    return [("Name", "string", _name), *COLUMNS.get(resource, []), ("Age", "string", age)]


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(resource: str, items: list[Obj], list_meta: Obj, include: str = "Metadata") -> Obj:
    columns = _columns(resource)
    rows = []
    for obj in items:
        row: Obj = {"cells": [fn(obj) for _, _, fn in columns]}
        row_object = _row_object(obj, include)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": 0,
            }
            for name, kind, _ in columns
        ],
        "rows": rows,
    }
