"""Telling a watch's echoes of the sync's own writes from news about an object."""

from __future__ import annotations

__all__ = ["Echoes"]


class Echoes:
    """Tells the watch's echoes of the loop's own writes from news, without ordering
    resourceVersions (to a client they are opaque strings): a watch delivers in order, so
    while a write of ours has not come back through it, every event on that object is older
    than what we wrote."""

    _DELETED = ""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], str] = {}

    def wrote(self, key: tuple[str, str], resource_version: str) -> None:
        self._pending[key] = resource_version

    def deleted(self, key: tuple[str, str]) -> None:
        self._pending[key] = self._DELETED

    def stale(self, key: tuple[str, str], event: str, resource_version: str) -> bool:
        """Whether the event is our own write coming back, or older than it."""
        pending = self._pending.get(key)
        if pending is None:
            return False
        if (event == "DELETED") == (pending == self._DELETED) and (
            event == "DELETED" or resource_version == pending
        ):
            del self._pending[key]
        return True

    def clear(self) -> None:
        self._pending.clear()
