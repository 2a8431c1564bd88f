"""Label and field selectors, as the API server parses them.

Label selector grammar (k8s.io/apimachinery/pkg/labels):

    selector    := requirement ("," requirement)*
    requirement := KEY | "!" KEY | KEY op VALUE | KEY set_op "(" VALUE ("," VALUE)* ")"
    op          := "=" | "==" | "!="
    set_op      := "in" | "notin"

`!=` and `notin` also match objects that lack the key, as on the real server. Field selectors
take only `=`, `==` and `!=` over the fields a resource's field-label table names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.kube.errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(\s*([^)]*)\)\s*$")
_BINARY = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split(selector: str) -> list[str]:
    """Split on the commas that are not inside a set's parentheses."""
    parts, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Matcher:
    if m := _SET.match(text):
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if not values:
            raise bad_request(
                f"unable to parse requirement: {text!r}: for 'in', 'notin' "
                "operators, values set can't be empty"
            )
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _BINARY.match(text):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(text):
        negate, key = m.group(1) == "!", m.group(2)
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(
        f"unable to parse requirement: found '{text.strip()}', expected: "
        "'=', '!=', '==', 'in', notin'"
    )


def label_matcher(selector: str | None) -> Matcher:
    """A predicate over an object's metadata.labels."""
    if not selector:
        return lambda labels: True
    requirements = [_requirement(part) for part in _split(selector)]
    return lambda labels: all(req(labels) for req in requirements)


# Field labels each resource supports beyond metadata.name and metadata.namespace, as in the
# real server's field-label conversion functions (pkg/apis/core/v1/conversion.go).
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "pods": ("spec.nodeName", "spec.serviceAccountName", "status.phase", "spec.schedulerName"),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "replicasets": ("status.replicas",),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(resource: str, selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over a whole object."""
    if not selector:
        return lambda obj: True
    known = ("metadata.name", "metadata.namespace", *FIELD_LABELS.get(resource, ()))
    tests: list[tuple[str, bool, str]] = []
    for part in _split(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        field, op, value = m.groups()
        if field not in known:
            raise bad_request(f"field label not supported: {field}")
        tests.append((field, op == "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all(
            (_field_value(obj, f) != v) if neg else (_field_value(obj, f) == v)
            for f, neg, v in tests
        )

    return match
