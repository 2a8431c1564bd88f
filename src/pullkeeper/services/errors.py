"""Errors a use case reports; every face renders them the same way."""

from __future__ import annotations

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "KeepsWrites",
    "NotFound",
    "PreconditionFailed",
    "ServiceError",
    "TooManyRequests",
    "Unauthorized",
    "WrongCurrentPassword",
    "WrongPassword",
]


class ServiceError(Exception):
    """What went wrong, with which input (`field`), and the HTTP status it maps to."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class KeepsWrites(Exception):
    """A refusal whose transaction still commits what it wrote (a failed login is counted
    in the store, where every server process sees it)."""


class WrongPassword(KeepsWrites, Unauthorized):
    """A refused login, counted by the login throttle."""


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PreconditionFailed(ServiceError):
    """The object changed since the writer read it (If-Match, a form's version)."""

    status, code = 412, "precondition_failed"


class Invalid(ServiceError):
    status, code = 422, "invalid"


class WrongCurrentPassword(KeepsWrites, Invalid):
    """A refused password change, counted by the login throttle."""


class TooManyRequests(ServiceError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
