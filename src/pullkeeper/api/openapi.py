"""The OpenAPI document as the API really answers: errors in the API's own envelope, and
answers described in words rather than the framework's defaults."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["ERROR_SCHEMA", "describe_answers"]

# What every error answer carries (api/app.py's error()).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "What kind of error, e.g. `invalid`."},
                "message": {"type": "string", "description": "What is wrong, in words."},
                "field": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "The input field at fault, if one is.",
                },
            },
        }
    },
}
_INVALID = "The input is invalid: the error names the field and says what is wrong."
_DEFAULT = "Successful Response"


def _success(method: str, status: str) -> str:
    if status == "201":
        return "Created."
    if status == "204":
        return "Done; no body."
    return "What was asked for, as JSON." if method == "get" else "Done."


def _rewrite(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            for status, answer in operation.get("responses", {}).items():
                if status == "422":
                    answer["description"] = _INVALID
                    answer["content"] = {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    }
                elif answer.get("description") == _DEFAULT:
                    answer["description"] = _success(method, status)
    # The framework's validation schemas describe answers this API never gives.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def describe_answers(app: FastAPI) -> None:
    """Make app's OpenAPI document say what the API answers (built once, on first ask)."""
    framework = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _rewrite(framework())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
