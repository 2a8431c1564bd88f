"""Durations in words, as the CLI and the web pages say how long a token has left."""

from __future__ import annotations

__all__ = ["relative", "span"]


def span(seconds: float) -> str:
    """A duration (its sign ignored) in its two largest units: 2d 3h, 5h 12m, 12m, or under a
    minute."""
    minutes = int(abs(seconds)) // 60
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m" if mins else "under a minute"


def relative(seconds: float) -> str:
    """How far a moment `seconds` from now is: in 5h 12m, or 3m ago."""
    return f"in {span(seconds)}" if seconds >= 0 else f"{span(seconds)} ago"
