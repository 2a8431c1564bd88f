"""Writing files that hold secrets or must never be seen half-written."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write data to path with `mode` (owner-only by default), whatever was there before.

    A new file under a random name, synced, then renamed into place: an existing file, with
    its mode, or a symbolic link at path (or at a leftover temporary name) is replaced,
    never written through, and a reader sees the old content or the new, never a part.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
