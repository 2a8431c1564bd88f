"""Form input checked by the request bodies (services/schemas.py), errors keyed by field for
inline display."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from fastapi import UploadFile
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


def upload_text(
    upload: UploadFile | None, errors: Errors, field: str, what: str, limit: int
) -> str:
    """An uploaded file's text ("" when none was chosen); an error at `field` when it is
    over `limit` bytes or not text (`what`: the file expected, to say which to choose)."""
    if upload is None or not upload.filename:
        return ""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        errors[field] = f"the file {upload.filename!r} is over {limit // 1024} KiB; choose {what}"
        return ""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors[field] = f"the file {upload.filename!r} is not text; choose {what}"
        return ""
