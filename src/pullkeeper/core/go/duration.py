"""time.Duration: ParseDuration and Duration.String, on int nanoseconds.

The kubelet reads a credential provider's cacheDuration (and its config's
defaultCacheDuration) with ParseDuration, and a duration is written back the
way Duration.String writes it: "6h0m0s", "1m30s", "1.5s", "0s".
"""

from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_MAX = (1 << 63) - 1
_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}


class InvalidDuration(ValueError):
    """What ParseDuration returns as an error, with Go's message."""


def _quote(s: str) -> str:
    # time's own quote: a byte that is not printable ASCII is written as \xNN.
    out = []
    for c in s:
        if " " <= c < "\x7f":
            out.append("\\" + c if c in '"\\' else c)
        else:
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape"))
    return '"' + "".join(out) + '"'


def _digits(s: str) -> int:
    """How many ASCII digits s starts with."""
    i = 0
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return i


def _fraction(digits: str) -> tuple[int, float]:
    """leadingFraction: the digits' value and 10**len, precision dropped past 2**63."""
    value, scale = 0, 1.0
    for c in digits:
        following = value * 10 + ord(c) - ord("0")
        if value > _MAX // 10 or following > 1 << 63:
            break
        value, scale = following, scale * 10
    return value, scale


def parse(s: str) -> int:
    """time.ParseDuration(s) in nanoseconds; raises InvalidDuration as Go fails."""
    invalid = InvalidDuration("time: invalid duration " + _quote(s))
    rest, negative = s, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise invalid
        n = _digits(rest)
        whole, rest = rest[:n], rest[n:]
        significant = whole.lstrip("0")
        if len(significant) > 19 or int(significant or "0") > 1 << 63:
            raise invalid  # leadingInt's overflow
        value = int(significant or "0")
        fraction, scale, has_fraction = 0, 1.0, False
        if rest[:1] == ".":
            n = _digits(rest[1:])
            fraction, scale = _fraction(rest[1 : n + 1])
            has_fraction, rest = n > 0, rest[n + 1 :]
        if not whole and not has_fraction:
            raise invalid  # no digits, as in ".s"
        n = 0
        while n < len(rest) and not (rest[n] == "." or "0" <= rest[n] <= "9"):
            n += 1
        if n == 0:
            raise InvalidDuration("time: missing unit in duration " + _quote(s))
        name, rest = rest[:n], rest[n:]
        unit = _UNITS.get(name)
        if unit is None:
            raise InvalidDuration(f"time: unknown unit {_quote(name)} in duration {_quote(s)}")
        if value > (1 << 63) // unit:
            raise invalid
        value *= unit
        if fraction > 0:
            # Go computes this in float64, so a fraction of an hour is exact to the nanosecond.
            value += int(float(fraction) * (float(unit) / scale))
            if value > 1 << 63:
                raise invalid
        # Go adds in uint64, which wraps: two halves of 2**64 make 0, and pass.
        total = (total + value) % (1 << 64)
        if total > 1 << 63:
            raise invalid
    if negative:
        return -total
    if total > _MAX:
        raise invalid
    return total


def _fraction_digits(value: int, precision: int) -> tuple[str, int]:
    """fmtFrac: ".ddd" of value / 10**precision without trailing zeros ("" for none), and the
    whole part."""
    whole, part = divmod(value, 10**precision)
    digits = f"{part:0{precision}d}".rstrip("0") if precision else ""
    return ("." + digits if digits else ""), whole


def format(ns: int) -> str:
    """Duration(ns).String()."""
    u = abs(ns)
    sign = "-" if ns < 0 else ""
    if u == 0:
        return "0s"
    if u < SECOND:
        # Under a second, the unit is the largest that leaves a non-zero leading digit.
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        precision, unit = (3, "\u00b5s") if u < MILLISECOND else (6, "ms")
        fraction, whole = _fraction_digits(u, precision)
        return f"{sign}{whole}{fraction}{unit}"
    fraction, seconds = _fraction_digits(u, 9)
    minutes, seconds = divmod(seconds, 60)
    out = f"{seconds}{fraction}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        out = f"{minutes}m{out}"
        if hours:
            out = f"{hours}h{out}"
    return sign + out
