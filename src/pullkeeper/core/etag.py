"""Entity tags and If-Match, as RFC 9110 writes them (sections 8.8.3 and 13.1.1).

Grammar::

    ETag       = entity-tag
    entity-tag = [ weak ] opaque-tag
    weak       = "W/"
    opaque-tag = DQUOTE *etagc DQUOTE
    etagc      = %x21 / %x23-7E / obs-text          ; any visible byte but DQUOTE
    If-Match   = "*" / #entity-tag                  ; a comma list, empty elements allowed

If-Match compares strongly: a weak tag never matches. pullkeeper's opaque tags
are `<object id>.<version>`, strong, and never reused: the id keeps a deleted
and re-created object of the same name from matching the old one's tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ETAGC = r"[\x21\x23-\x7e\x80-\xff]"
_ENTITY_TAG = re.compile(rf'(W/)?"({_ETAGC}*)"')
_OWS = " \t"


class InvalidIfMatch(ValueError):
    """An If-Match value that is neither `*` nor a list of quoted entity tags."""


@dataclass(frozen=True, slots=True)
class IfMatch:
    """The versions a writer accepts: the strong tags it names, or any (`*`)."""

    tags: frozenset[str] = frozenset()
    any: bool = False

    def admits(self, tag: str) -> bool:
        return self.any or tag in self.tags


ANY = IfMatch(any=True)


def of(key: str, version: int) -> str:
    """The opaque tag of one version of one object."""
    return f"{key}.{version}"


def header(tag: str) -> str:
    """An opaque tag as an ETag header's value: strong, in double quotes."""
    return f'"{tag}"'


def parse_if_match(value: str) -> IfMatch:
    """An If-Match header's value; InvalidIfMatch says what is wrong with it."""
    text = value.strip(_OWS)
    if text == "*":
        return ANY
    if not text:
        raise InvalidIfMatch('If-Match is empty: send the ETag a GET returned, or "*"')
    strong: set[str] = set()
    i, n = 0, len(text)
    while i < n:
        if text[i] in _OWS or text[i] == ",":
            i += 1
            continue
        match = _ENTITY_TAG.match(text, i)
        if match is None:
            raise InvalidIfMatch(
                f"If-Match: {value!r} is not a list of entity tags; send the ETag header a "
                'GET returned, quotes included (If-Match: "..."), or "*"'
            )
        if not match.group(1):
            strong.add(match.group(2))
        i = match.end()
        while i < n and text[i] in _OWS:
            i += 1
        if i < n and text[i] != ",":
            raise InvalidIfMatch(
                f"If-Match: {value!r}: entity tags must be separated by commas; send the "
                "ETag header a GET returned, quotes included"
            )
    return IfMatch(frozenset(strong))
