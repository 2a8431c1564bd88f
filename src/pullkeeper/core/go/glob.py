"""path/filepath.Match on Unix: `*`, `?`, `[...]` classes and `\\` escapes.

The kubelet matches every DNS label of a credential key with it, so a key
such as `[::1]` is a character class, not a literal, exactly as in Go.
"""

from __future__ import annotations

_SEPARATOR = "/"
_RUNE_ERROR = "\ufffd"


class BadPattern(ValueError):
    """filepath.ErrBadPattern."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def _rune(c: str) -> str:
    # A byte that was not UTF-8 decodes in Go to utf8.RuneError.
    return _RUNE_ERROR if "\udc80" <= c <= "\udcff" else c


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern and pattern[0] == "*":
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern
    r = chunk[0]
    if "\udc80" <= r <= "\udcff":
        raise BadPattern
    rest = chunk[1:]
    if not rest:
        raise BadPattern
    return r, rest


def _match_chunk(chunk: str, s: str) -> str | None:
    """The rest of s after chunk matched its start, or None; raises BadPattern."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = _rune(s[0]), s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk and chunk[0] == "^":
                negated = True
                chunk = chunk[1:]
            matched = False
            nrange = 0
            while True:
                if chunk and chunk[0] == "]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if lo <= r <= hi:
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == _SEPARATOR:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def match(pattern: str, name: str) -> bool:
    """filepath.Match(pattern, name); raises BadPattern where Go returns ErrBadPattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and chunk == "":
            return _SEPARATOR not in name
        t = _match_chunk(chunk, name)
        if t is not None and (t == "" or pattern):
            name = t
            continue
        if star:
            advanced = False
            i = 0
            while i < len(name) and name[i] != _SEPARATOR:
                t = _match_chunk(chunk, name[i + 1 :])
                if t is not None:
                    if not pattern and t:
                        i += 1
                        continue
                    name = t
                    advanced = True
                    break
                i += 1
            if advanced:
                continue
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return name == ""


def has_meta(pattern: str) -> bool:
    """Whether pattern could match anything but itself."""
    return any(c in pattern for c in "*?[\\")
