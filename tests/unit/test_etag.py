"""Entity tags and If-Match as RFC 9110 writes them (8.8.3, 13.1.1), case by case."""

from __future__ import annotations

import pytest

from pullkeeper.core import etag
from pullkeeper.core.etag import ANY, IfMatch, InvalidIfMatch


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", ANY),
        ("  *\t", ANY),
        ('"a.1"', IfMatch(frozenset({"a.1"}))),
        ('"a.1", "b.2"', IfMatch(frozenset({"a.1", "b.2"}))),
        ('"a.1","b.2"', IfMatch(frozenset({"a.1", "b.2"}))),
        # Empty list elements are allowed and ignored (RFC 9110 5.6.1).
        (', "a.1" ,, "b.2",', IfMatch(frozenset({"a.1", "b.2"}))),
        # A comma is an etagc: it does not split a tag.
        ('"a,b"', IfMatch(frozenset({"a,b"}))),
        ('""', IfMatch(frozenset({""}))),
        # Weak tags are valid but never match under strong comparison.
        ('W/"a.1"', IfMatch(frozenset())),
        ('W/"a.1", "b.2"', IfMatch(frozenset({"b.2"}))),
        (",", IfMatch(frozenset())),
        ('"caf\xe9"', IfMatch(frozenset({"caf\xe9"}))),  # obs-text, as a latin-1 header
    ],
)
def test_parse_if_match(value: str, expected: IfMatch) -> None:
    assert etag.parse_if_match(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "a.1",  # no quotes
        '"a.1',  # unterminated
        'a.1"',
        '"a.1" "b.2"',  # no comma between
        '"a.1"x',
        '*, "a.1"',  # * stands alone
        '"*"x',
        'w/"a.1"',  # W/ is case-sensitive
        'W/ "a.1"',
        '"a b"',  # a space is not an etagc
        '"a\tb"',
        '"a\x7fb"',
        '"a"b"',
    ],
)
def test_parse_if_match_refuses(value: str) -> None:
    with pytest.raises(InvalidIfMatch, match="If-Match"):
        etag.parse_if_match(value)


def test_admits_compares_strongly() -> None:
    tags = etag.parse_if_match('"a.1", W/"a.2"')
    assert tags.admits("a.1")
    assert not tags.admits("a.2")
    assert not tags.admits("a.10")
    assert ANY.admits("anything")


def test_tags_of_versions() -> None:
    assert etag.of("4f0c", 3) == "4f0c.3"
    assert etag.header(etag.of("4f0c", 3)) == '"4f0c.3"'
    assert etag.parse_if_match(etag.header(etag.of("4f0c", 3))).admits("4f0c.3")
