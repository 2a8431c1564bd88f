"""Conditional writes (RFC 9110): the ETag a read returns, the If-Match a write may send.

A GET of a cluster, project, credential or policy answers with a strong ETag
naming the object's current version; a write answers with the new one. A
PATCH, PUT, DELETE or (de)activation that sends If-Match is made only while the
object is still at a version it names (or exists, for `*`): else 412 and
nothing is saved. A write without If-Match goes through as it always has.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Response

from pullkeeper.core import etag
from pullkeeper.core.etag import IfMatch, InvalidIfMatch
from pullkeeper.services.errors import ServiceError

_ETAG = {
    "ETag": {
        "description": "The object's current version, a strong entity tag: send it back "
        "in If-Match to write only what you read.",
        "schema": {"type": "string", "example": '"4f0c9e1b2a7d4c3e8f6a5b4c3d2e1f00.3"'},
    }
}
_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "field": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    }
}
_PRECONDITION: dict[int | str, dict[str, Any]] = {
    400: {"description": "If-Match is not a list of entity tags or `*`.", **_ERROR},
    412: {
        "description": "The object changed since the version If-Match names; nothing was "
        "saved. Read it again, redo the change on what is there now, and retry.",
        **_ERROR,
    },
}

# The `responses` of the routes, for the OpenAPI document.
READ: dict[int | str, dict[str, Any]] = {200: {"description": "The object.", "headers": _ETAG}}
CREATE: dict[int | str, dict[str, Any]] = {201: {"description": "Created.", "headers": _ETAG}}
WRITE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The object as written.", "headers": _ETAG},
    **_PRECONDITION,
}
DELETE: dict[int | str, dict[str, Any]] = {204: {"description": "Deleted."}, **_PRECONDITION}


async def if_match(  # a coroutine: parsing a header needs no thread
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag of the GET the change is based on ("..." quotes included), '
            "or `*`: the write is made only if the object is still at that version, else 412. "
            "Without it, the write is made whatever changed meanwhile.",
        ),
    ] = None,
) -> IfMatch | None:
    if value is None:
        return None
    try:
        return etag.parse_if_match(value)
    except InvalidIfMatch as e:
        raise ServiceError(str(e), "If-Match") from None


IfMatchDep = Annotated[IfMatch | None, Depends(if_match)]


def tagged(response: Response, tag: str) -> None:
    """Put the object's version into the answer's ETag header."""
    response.headers["ETag"] = etag.header(tag)
