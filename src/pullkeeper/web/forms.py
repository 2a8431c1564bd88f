"""Form input checked by the request bodies (services/schemas.py), errors keyed by field for
inline display."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from pullkeeper.services.errors import ServiceError

M = TypeVar("M", bound=BaseModel)
Errors = dict[str, str]


def parse(model: type[M], values: Mapping[str, object], errors: Errors) -> M | None:
    """The model, or None with the first message per field added to errors."""
    try:
        return model(**values)
    except ValidationError as e:
        for item in e.errors():
            field = ".".join(str(p) for p in item["loc"][:1]) or "form"
            message = str(item["msg"])
            errors.setdefault(field, f"{field}: {message}")
        return None


def failure(
    action: Callable[[], object], errors: Errors, fields: tuple[str, ...]
) -> ServiceError | None:
    """Run a use case; a ServiceError lands next to its field (or above the form) and is
    returned, for the pages whose status follows it."""
    try:
        action()
    except ServiceError as e:
        where = e.field if e.field in fields else "form"
        errors.setdefault(where, e.message)
        return e
    return None


def attempt(action: Callable[[], object], errors: Errors, fields: tuple[str, ...]) -> bool:
    """Run a use case; True when it worked, else its error is in errors."""
    return failure(action, errors, fields) is None


def text(value: str | None) -> str | None:
    """A form text: trimmed, None when empty (the API's "not given")."""
    value = (value or "").strip()
    return value or None


def tristate(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")
