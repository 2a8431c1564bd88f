"""A file a renderer makes: where it goes, what it holds, whether it holds a secret (then
it is written 0600), and whether it is the machine's own with our settings merged in."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rendered"]


@dataclass(frozen=True, slots=True)
class Rendered:
    path: str  # absolute, POSIX
    content: bytes
    secret: bool = False
    # A file of the machine's own with our settings merged in (config.toml, daemon.json):
    # changed whoever wrote it, never removed.
    merged: bool = False

    def __repr__(self) -> str:  # never a secret's content
        return f"Rendered({self.path!r}, {len(self.content)} bytes, secret={self.secret})"
