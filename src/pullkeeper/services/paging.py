"""Keyset (seek) paging: the opaque cursors listings answer as `next`/`prev` and read back.

A cursor is the sort key of the row a page starts after (or, going back, ends
before), as unpadded base64url JSON. Reading the rows after a key costs the same
at any depth, where an offset makes the store skip every row before it; and a row
added or removed between two pages neither repeats nor hides another.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from pullkeeper.services.errors import Invalid

__all__ = ["Cursor", "Page", "decode", "encode", "page_of", "seek", "start"]

R = TypeVar("R")
_BAD = (
    "cursor is not one this listing gave out; pass the `next` (or `prev`) of an earlier "
    "answer unchanged, or leave cursor out to start from the first page"
)


@dataclass(frozen=True, slots=True)
class Cursor:
    key: tuple[Any, ...]
    before: bool = False  # the page ending just before the key (going back), not after it


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: its items, how many match in all, and the cursors of the pages
    after and before it (None at either end)."""

    items: list[dict[str, Any]]
    total: int
    next: str | None
    prev: str | None

    def body(self, limit: int, offset: int) -> bytes:
        """The page as the API answers it (JSON), with the limit and offset asked."""
        return orjson.dumps(
            {
                "items": self.items,
                "total": self.total,
                "limit": limit,
                "offset": offset,
                "next": self.next,
                "prev": self.prev,
            }
        )

    @classmethod
    def of_body(cls, body: bytes) -> Page:
        found = orjson.loads(body)
        return cls(found["items"], found["total"], found["next"], found["prev"])


def encode(key: Sequence[Any], *, before: bool = False) -> str:
    doc = {"b" if before else "a": list(key)}
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(text: str, shape: tuple[type, ...]) -> Cursor:
    """A cursor read back; Invalid (422, field "cursor") unless it is a key of this shape."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        raise Invalid(_BAD, "cursor") from None
    if not isinstance(doc, dict) or len(doc) != 1 or not ({"a", "b"} >= doc.keys()):
        raise Invalid(_BAD, "cursor")
    before = "b" in doc
    key = doc["b" if before else "a"]
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        # bool is an int to Python, never a key to us
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True)
        )
    ):
        raise Invalid(_BAD, "cursor")
    return Cursor(tuple(key), before)


def start(cursor: str | None, offset: int, shape: tuple[type, ...]) -> Cursor | None:
    """Where a page starts, as a request gives it: a cursor or an offset, not both."""
    if not cursor:
        return None
    if offset:
        raise Invalid(
            "give either cursor or offset, not both (a cursor is a place already)", "offset"
        )
    return decode(cursor, shape)


def seek(
    stmt: Select[Any],
    order: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    cursor: Cursor | None,
    limit: int,
    *,
    descending: bool = False,
) -> Select[Any]:
    """The statement ordered by `order` (a total order: its last column unique), from the
    cursor on, one row more than `limit` (to tell whether more follow)."""
    down = descending != (cursor is not None and cursor.before)
    if cursor is not None:
        here = tuple_(*order)
        at = tuple_(*(literal(v) for v in cursor.key))
        stmt = stmt.where(here < at if down else here > at)
    return stmt.order_by(*(c.desc() if down else c.asc() for c in order)).limit(limit + 1)


def page_of(
    rows: list[R], cursor: Cursor | None, limit: int, offset: int, key: Callable[[R], Sequence[Any]]
) -> tuple[list[R], str | None, str | None]:
    """The rows a seek()'s statement read, in listing order, with the next and prev cursors."""
    back = cursor is not None and cursor.before
    more = len(rows) > limit
    rows = rows[:limit]
    if back:
        rows.reverse()
    if not rows:
        return rows, None, None
    after = more or back
    before = more if back else (cursor is not None or offset > 0)
    return (
        rows,
        encode(key(rows[-1])) if after else None,
        encode(key(rows[0]), before=True) if before else None,
    )
