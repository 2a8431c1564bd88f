"""The orders a credential listing can take: by name (the default), registry address, scope,
stored state or last change, either way. Each is a total order (the id breaks ties), so the
keyset cursors of services/paging.py page through it as they page through names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from pullkeeper.services.errors import Invalid
from pullkeeper.store.models import Credential

__all__ = ["DEFAULT", "FIELDS", "Sort", "parse"]

# The sort's name -> the column ordered by and the listing item's field holding its value.
_COLUMNS: dict[str, tuple[InstrumentedAttribute[Any], str]] = {
    "name": (Credential.name, "name"),
    "server": (Credential.server, "server"),
    "scope": (Credential.scope, "scope"),
    "state": (Credential.state, "state"),
    "updated": (Credential.updated_at, "updated_at"),
}
FIELDS = tuple(_COLUMNS)


@dataclass(frozen=True, slots=True)
class Sort:
    field: str = "name"
    descending: bool = False

    @property
    def text(self) -> str:
        """As a request gives it: the field, with a leading - for the other way."""
        return ("-" if self.descending else "") + self.field

    @property
    def order(self) -> tuple[InstrumentedAttribute[Any], ...]:
        return (_COLUMNS[self.field][0], Credential.id)

    def key(self, item: dict[str, Any]) -> tuple[Any, ...]:
        """The cursor's key of a listing item: its sort value (as the item has it) and id."""
        return (item[_COLUMNS[self.field][1]], item["id"])

    def column_key(self, key: Sequence[Any]) -> tuple[Any, ...]:
        """A cursor's key as the columns compare it (a time read back from its text)."""
        value, credential_id = key
        if self.field == "updated":
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise Invalid("cursor is not one this listing gave out", "cursor") from None
        return (value, credential_id)


DEFAULT = Sort()


def parse(text: str | None) -> Sort:
    """The sort a request names (`updated`, `-updated`); by name when it names none."""
    if not text:
        return DEFAULT
    field = text.removeprefix("-")
    if field not in _COLUMNS:
        raise Invalid(
            f"sort must be one of {', '.join(FIELDS)}, with a leading - for the other way "
            "(e.g. -updated: the last changed first)",
            "sort",
        )
    return Sort(field, text.startswith("-"))
