"""services.credential_sorts: what a request's sort names, and the cursor keys it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pullkeeper.services import credential_sorts
from pullkeeper.services.credential_sorts import Sort
from pullkeeper.services.errors import Invalid


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", Sort("name")),
        (None, Sort("name")),
        ("name", Sort("name")),
        ("-name", Sort("name", descending=True)),
        ("server", Sort("server")),
        ("-updated", Sort("updated", descending=True)),
        ("scope", Sort("scope")),
        ("-state", Sort("state", descending=True)),
    ],
)
def test_parse(text: str | None, want: Sort) -> None:
    assert credential_sorts.parse(text) == want
    assert credential_sorts.parse(want.text) == want  # the links' text reads back the same


@pytest.mark.parametrize("text", ["colour", "--name", "+name", "Name", "updated_at", "-"])
def test_an_unknown_sort_says_which_there_are(text: str) -> None:
    with pytest.raises(Invalid) as e:
        credential_sorts.parse(text)
    assert e.value.field == "sort"
    assert "sort must be one of name, server, scope, state, updated" in e.value.message


def test_a_time_key_is_read_back_as_a_time() -> None:
    at = datetime(2026, 5, 1, 12, 34, 56, 789, tzinfo=UTC)
    item = {"id": "c1", "updated_at": at.isoformat(), "name": "a"}
    key = Sort("updated").key(item)
    assert key == (at.isoformat(), "c1")
    assert Sort("updated").column_key(key) == (at, "c1")
    assert Sort("name").column_key(("a", "c1")) == ("a", "c1")
    with pytest.raises(Invalid):
        Sort("updated").column_key(("yesterday", "c1"))
