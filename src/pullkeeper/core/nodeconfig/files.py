"""A file a renderer makes: where it goes, what it holds, whether it holds a secret (then
it is written 0600)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rendered"]


@dataclass(frozen=True, slots=True)
class Rendered:
    path: str  # absolute, POSIX
    content: bytes
    secret: bool = False

    def __repr__(self) -> str:  # never a secret's content
        return f"Rendered({self.path!r}, {len(self.content)} bytes, secret={self.secret})"
