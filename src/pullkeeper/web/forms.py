"""Form input checked by the request bodies (services/schemas.py), errors keyed by field for
inline display, every field's at once and in words (never a pattern or a parser's jargon)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import UploadFile
from pydantic import BaseModel, ValidationError

from pullkeeper.core.names import InvalidName, validate_label, validate_subdomain
from pullkeeper.services.errors import ServiceError

M = TypeVar("M", bound=BaseModel)
Errors = dict[str, str]


def label(field: str, labels: Mapping[str, str] | None = None) -> str:
    """How a message names a field: its label in lower case, else its name in words."""
    return (labels or {}).get(field) or field.replace("_", " ")


def words(item: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """A pydantic error (a request body's, a form field's) as a sentence about the field."""
    loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
    what = "the " + label(loc[0], labels) if loc else "the form"
    ctx = item.get("ctx") or {}
    kind = item.get("type", "")
    if kind == "missing":
        return f"{what} is required"
    if kind == "string_too_long":
        return f"{what} is too long: at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"{what} is too short: at least {ctx.get('min_length')} characters"
    if kind == "too_long":
        return f"{what} has too many entries: at most {ctx.get('max_length')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{what} must be a whole number, such as 3"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {
            "greater_than_equal": f"at least {ctx.get('ge')}",
            "less_than_equal": f"at most {ctx.get('le')}",
            "greater_than": f"more than {ctx.get('gt')}",
            "less_than": f"less than {ctx.get('lt')}",
        }[kind]
        return f"{what} must be {bound}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{what} must be yes or no"
    if kind == "extra_forbidden":
        return f"the form has a field this page does not know ({label(loc[0])}); reload the page"
    if kind == "value_error" and "error" in ctx:
        return f"{what}: {ctx['error']}"
    return f"{what} is not valid; check it and send it again"


def parse(
    model: type[M],
    values: Mapping[str, object],
    errors: Errors,
    labels: Mapping[str, str] | None = None,
) -> M | None:
    """The model, or None with the first message per field, in words, added to errors."""
    try:
        return model(**values)
    except ValidationError as e:
        for item in e.errors():
            field = ".".join(str(p) for p in item["loc"][:1]) or "form"
            errors.setdefault(field, words(item, labels))
        return None


def name_problem(value: str, what: str, *, dots: bool = True, example: str = "") -> str | None:
    """What is wrong with a Kubernetes name as typed, in words, or None: core/names.py
    decides (a subdomain with dots, else a label), the page says it without its pattern."""
    limit = 253 if dots else 63
    try:
        (validate_subdomain if dots else validate_label)(value, what)
    except InvalidName:
        if not value:
            return f"the {what} is required"
        if len(value) > limit:
            return f"the {what} is too long: at most {limit} characters"
        allowed = (
            'lowercase letters, digits, "-" and "."'
            if dots
            else 'lowercase letters, digits and "-"'
        )
        tail = f", such as {example}" if example else ""
        return (
            f"the {what} may have only {allowed}, and must start and end with a letter or "
            f"digit{tail}"
        )
    return None


def check_all(errors: Errors, checks: Mapping[str, Callable[[], str | None]]) -> None:
    """Run every field's check before the use case, so that the page shows every field's
    problem at once: a check returns its problem in words (or raises a ServiceError); the
    first problem of a field is the one kept."""
    for field, check in checks.items():
        if field in errors:
            continue
        try:
            problem = check()
        except ServiceError as e:
            problem = e.message
        if problem:
            errors[field] = problem


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
