"""Failures as the real API server words them: a `Status` body, its reason, its HTTP code."""

from __future__ import annotations

from typing import Any

from tests.kube.resources import Resource

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiFailure(Exception):
    """Raised anywhere in the fake; the HTTP layer answers it with its Status."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "")
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.message, self.reason, self.details)


def status_body(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, ""),
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def _details(res: Resource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return details


def not_found(res: Resource, name: str) -> ApiFailure:
    return ApiFailure(404, f'{res.qualified} "{name}" not found', details=_details(res, name))


def terminating(res: Resource, name: str, namespace: str) -> ApiFailure:
    """A create in a namespace that is being deleted (the NamespaceLifecycle admission)."""
    details = _details(res, name)
    details["causes"] = [
        {
            "reason": "NamespaceTerminating",
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]
    return ApiFailure(
        403,
        f'{res.qualified} "{name}" is forbidden: unable to create new content in namespace '
        f"{namespace} because it is being terminated",
        details=details,
    )


def already_exists(res: Resource, name: str) -> ApiFailure:
    return ApiFailure(
        409, f'{res.qualified} "{name}" already exists', "AlreadyExists", _details(res, name)
    )


def conflict(res: Resource, name: str, why: str | None = None) -> ApiFailure:
    why = (
        why
        or "the object has been modified; please apply your changes to the latest version and "
        "try again"
    )
    return ApiFailure(
        409,
        f'Operation cannot be fulfilled on {res.qualified} "{name}": {why}',
        "Conflict",
        _details(res, name),
    )


def bad_request(message: str) -> ApiFailure:
    return ApiFailure(400, message)


def gone(message: str) -> ApiFailure:
    return ApiFailure(410, message, "Expired")


def invalid(res: Resource, name: str, causes: list[tuple[str, str, str]]) -> ApiFailure:
    """422 Invalid; causes are (field, reason such as FieldValueInvalid, message)."""
    details = {
        "name": name,
        "kind": res.kind,
        "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
    }
    if res.group:
        details["group"] = res.group
    joined = ", ".join(f"{f}: {m}" for f, _, m in causes)
    if len(causes) > 1:
        joined = f"[{joined}]"
    return ApiFailure(422, f'{res.kind} "{name}" is invalid: {joined}', "Invalid", details)


def forbidden_for(
    user: str, verb: str, res: Resource | None, namespace: str | None, name: str | None
) -> str:
    """The RBAC denial message, e.g. `secrets "x" is forbidden: User "u" cannot get resource...`."""
    if res is None:
        return f'forbidden: User "{user}" cannot {verb} path'
    subject = f'{res.qualified} "{name}"' if name else res.qualified
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{res.plural}" '
        f'in API group "{res.group}"{where}'
    )
