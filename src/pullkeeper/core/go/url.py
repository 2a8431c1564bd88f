"""net/url.Parse and net.SplitHostPort, as far as the kubelet's keyring uses them.

Go keeps strings as bytes; here a byte that is not valid UTF-8 after
percent-decoding is carried as a surrogate escape, so it round-trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX = "0123456789abcdefABCDEF"
# Characters a host may hold unescaped (RFC 3986 sub-delims plus what Go adds).
_HOST_EXTRA = frozenset("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_EXTRA = frozenset("-._:~!$&'()*+,;=%@")
# The same rules as one expression, for the common case of a host with no escapes.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9!$&'()*+,;=:\[\]<>\"\-_.~\x80-\U0010ffff]*")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class URLError(ValueError):
    """What Go's url.Parse would have returned as an error."""


@dataclass(frozen=True, slots=True)
class URL:
    scheme: str
    host: str
    path: str


def _quote(s: str) -> str:
    """strconv.Quote, which Go's url errors use, for the characters that reach it."""
    return '"' + "".join(c if " " <= c < "\x7f" and c not in '"\\' else _escape(c) for c in s) + '"'


def _escape(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xDC00:02x}"
    if c.isprintable() and c >= "\xa0":
        return c
    return {
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
    }.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def _cut3(s: str) -> str:
    """The first three bytes of s, as Go slices an escape for its error."""
    head = s[:3].encode("utf-8", "surrogateescape")[:3]
    return head.decode("utf-8", "surrogateescape")


def _is_alnum(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def _host_char_ok(c: str) -> bool:
    return c >= "\x80" or _is_alnum(c) or c in _HOST_EXTRA


def _unescape(s: str, mode: str) -> str:
    """Go's url.unescape for the modes the keyring reaches: host, zone, path, other."""
    if "%" not in s and (mode not in ("host", "zone") or _PLAIN_HOST.fullmatch(s)):
        return s
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "%":
            if i + 2 >= n or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {_quote(_cut3(s[i:]))}")
            if mode == "host" and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise URLError(f"invalid URL escape {_quote(_cut3(s[i:]))}")
            if mode == "zone":
                v = chr(int(s[i + 1 : i + 3], 16))
                if s[i : i + 3] != "%25" and v != " " and not (_is_alnum(v) or v in _HOST_EXTRA):
                    raise URLError(f"invalid URL escape {_quote(_cut3(s[i:]))}")
            i += 3
            continue
        if mode in ("host", "zone") and not _host_char_ok(c):
            raise URLError(f"invalid character {_quote(c)} in host name")
        i += 1
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    while i < n:
        if s[i] == "%":
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
        else:
            out += s[i].encode("utf-8", "surrogateescape")
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all("0" <= c <= "9" for c in port[1:])


def _parse_host(host: str) -> str:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            raise URLError("missing ']' in host")
        colon_port = host[i + 1 :]
        if not _valid_optional_port(colon_port):
            raise URLError(f'invalid port "{colon_port}" after host')
        zone = host[:i].find("%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], "host")
                + _unescape(host[zone:i], "zone")
                + _unescape(host[i:], "host")
            )
    else:
        i = host.rfind(":")
        if i != -1:
            colon_port = host[i:]
            if not _valid_optional_port(colon_port):
                raise URLError(f'invalid port "{colon_port}" after host')
    return _unescape(host, "host")


def _parse_authority(authority: str) -> str:
    i = authority.rfind("@")
    host = _parse_host(authority[i + 1 :] if i >= 0 else authority)
    if i >= 0:
        userinfo = authority[:i]
        if not all(_is_alnum(c) or c in _USERINFO_EXTRA for c in userinfo):
            raise URLError("net/url: invalid userinfo")
        _unescape(userinfo, "other")
    return host


def parse(raw: str) -> URL:
    """url.Parse for an absolute http(s) URL with an authority, as the keyring builds them."""
    raw, sep, fragment = raw.partition("#")
    if _CONTROL.search(raw):
        raise URLError("net/url: invalid control character in URL")
    scheme, colon, rest = raw.partition(":")
    if not colon or not scheme or not scheme[0].isalpha():
        raise URLError("missing protocol scheme")
    scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.partition("?")[0]
    host = ""
    if rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        host = _parse_authority(authority)
    path = _unescape(rest, "path")
    if sep:
        _unescape(fragment, "other")
    return URL(scheme=scheme, host=host, path=path)


def split_host_port(hostport: str) -> tuple[str, str]:
    """net.SplitHostPort; raises ValueError where Go returns an error."""
    i = hostport.rfind(":")
    if i < 0:
        raise ValueError("missing port in address")
    j = k = 0
    if hostport[0] == "[":
        end = hostport.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        if end + 1 == len(hostport):
            raise ValueError("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise ValueError("too many colons in address")
            raise ValueError("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise ValueError("too many colons in address")
    if "[" in hostport[j:]:
        raise ValueError("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise ValueError("unexpected ']' in address")
    return host, hostport[i + 1 :]
