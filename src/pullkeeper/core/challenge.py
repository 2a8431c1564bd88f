"""`WWW-Authenticate` challenges (RFC 9110 section 11.6.1), as registries send them.

A registry answers 401 with `Bearer realm="...",service="...",scope="..."`
(Docker token auth) or `Basic realm="..."`; one header may carry several
challenges, and a response may carry several headers. Parameter names are
case-insensitive, values are tokens or quoted strings with backslash escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SPACE = re.compile(r"[ \t]*")
_SCHEME = re.compile(_TCHARS)
_PARAM = re.compile(rf"({_TCHARS})[ \t]*=[ \t]*({_TCHARS}|{_QUOTED})")
_BARE_TOKEN68 = re.compile(rf"({_TOKEN68})[ \t]*(?=,|$)")


class ChallengeError(ValueError):
    """A WWW-Authenticate header that is not a list of challenges."""


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)  # names in lower case
    token68: str = ""

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name.lower(), default)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse(header: str) -> list[Challenge]:
    """The challenges in one header value, in order."""
    challenges: list[Challenge] = []
    pos, end = 0, len(header)

    def skip(p: int) -> int:
        while True:
            p = _SPACE.match(header, p).end()  # type: ignore[union-attr]
            if p < end and header[p] == ",":
                p += 1
                continue
            return p

    pos = skip(pos)
    while pos < end:
        scheme = _SCHEME.match(header, pos)
        if scheme is None:
            raise ChallengeError(f"expected an auth scheme at offset {pos} of {header!r}")
        pos = _SPACE.match(header, scheme.end()).end()  # type: ignore[union-attr]
        params: dict[str, str] = {}
        token68 = ""
        if pos < end and not _PARAM.match(header, pos):
            # A token68 stands alone before a comma or the end.
            bare = _BARE_TOKEN68.match(header, pos)
            if bare:
                token68, pos = bare.group(1), bare.end()
        while pos < end:
            start = skip(pos)
            param = _PARAM.match(header, start)
            if param is None:
                pos = start
                break
            params[param.group(1).lower()] = _unquote(param.group(2))
            pos = _SPACE.match(header, param.end()).end()  # type: ignore[union-attr]
            if pos < end and header[pos] != ",":
                raise ChallengeError(f"expected ',' at offset {pos} of {header!r}")
        challenges.append(Challenge(scheme.group(0).lower(), params, token68))
        pos = skip(pos)
    return challenges


def parse_all(headers: Iterable[str]) -> list[Challenge]:
    """The challenges of every WWW-Authenticate header of a response; bad headers are skipped."""
    found: list[Challenge] = []
    for header in headers:
        try:
            found.extend(parse(header))
        except ChallengeError:
            continue
    return found


def scopes(challenge: Challenge) -> list[str]:
    """The scopes a Bearer challenge names (space-separated, as distribution sends several)."""
    return challenge.get("scope").split()
