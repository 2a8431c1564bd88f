"""encoding/json: decoding as Go sees objects, and encoding byte for byte as Go writes.

Decoding keeps every member of an object in order (duplicates included) so
the callers can apply Go's rules: struct fields match case-insensitively, the
last duplicate wins, unknown members are ignored, maps merge when a member
repeats. Encoding reproduces json.Marshal's escaping.
"""

from __future__ import annotations

import codecs
import json as _json
import re
from typing import Any

# Go folds a field name with unicode.ToUpper(unicode.ToLower(r)); these are
# the only non-ASCII runes that fold onto an ASCII letter.
_FOLD_SPECIAL = {"\u017f": "S", "\u212a": "K", "\u0131": "I", "\u0130": "I"}


class Members(list[tuple[str, Any]]):
    """A JSON object as decoded: its members in document order, duplicates kept."""


class JSONSyntaxError(ValueError):
    """The input is not JSON at all."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _per_byte_replacement(err: UnicodeError) -> tuple[str, int]:
    # Go's decoder turns every invalid byte into its own U+FFFD.
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "\ufffd" * (err.end - err.start), err.end


codecs.register_error("pullkeeper-go-replace", _per_byte_replacement)


def replace_surrogates(s: str) -> str:
    """U+FFFD for every lone surrogate (an escaped one, or a byte that was not UTF-8), as Go."""
    return s if s.isascii() else _LONE_SURROGATE.sub("\ufffd", s)


def _clean(value: Any) -> Any:
    return replace_surrogates(value) if isinstance(value, str) else value


def _members(pairs: list[tuple[str, Any]]) -> Members:
    return Members((_clean(k), _clean(v)) for k, v in pairs)


def loads(data: bytes | str) -> Any:
    """Parse JSON; objects become Members. Invalid UTF-8 bytes become U+FFFD as in Go."""
    text = data.decode("utf-8", "pullkeeper-go-replace") if isinstance(data, bytes) else data
    try:
        return _clean(
            _json.loads(text, object_pairs_hook=_members, parse_constant=_reject_constant)
        )
    except ValueError as e:
        raise JSONSyntaxError(str(e)) from None
    except RecursionError:
        raise JSONSyntaxError("exceeded max depth") from None


def fold(name: str) -> str:
    """The key Go's decoder compares field names by."""
    if name.isascii():
        return name.upper()
    return "".join(_FOLD_SPECIAL.get(c) or _fold_rune(c) for c in name)


def _fold_rune(c: str) -> str:
    # Python's case mappings are the full ones; Go's simple mapping keeps a
    # rune whose full mapping has several characters (e.g. "ß").
    lower = c.lower()
    upper = lower.upper() if len(lower) == 1 else c
    return upper if len(upper) == 1 else c


def type_name(value: Any) -> str:
    """What Go calls a JSON value's kind in its UnmarshalTypeError."""
    if isinstance(value, Members):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


# json.Marshal's escaping with HTML escaping on (the default).
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update(
    {
        ord("\b"): "\\b",
        ord("\f"): "\\f",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("<"): "\\u003c",
        ord(">"): "\\u003e",
        ord("&"): "\\u0026",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)
_ESCAPES.update({c: "\\ufffd" for c in range(0xD800, 0xE000)})


def encode_string(s: str) -> str:
    """A Go json.Marshal string literal (invalid UTF-8, here surrogates, becomes \\ufffd)."""
    return '"' + s.translate(_ESCAPES) + '"'
