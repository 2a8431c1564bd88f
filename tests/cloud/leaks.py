"""Looking for secrets where they must not be: an exception as it would be printed, and the
log records (their extra fields too), whole or any line of a PEM."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable


def told(e: BaseException) -> str:
    """Everything an exception says: its text, its repr, and its traceback as printed."""
    return "\n".join([str(e), repr(e), *traceback.format_exception(e)])


def logged(records: Iterable[logging.LogRecord]) -> str:
    return "\n".join(json.dumps(vars(r), default=str) + r.getMessage() for r in records)


def _parts(secret: str) -> list[str]:
    # A PEM is found by any of its base64 lines, not only whole.
    lines = [line for line in secret.splitlines() if len(line) >= 16 and "-----" not in line]
    return [secret, *lines]


def assert_tells_none(text: str, secrets: Iterable[str]) -> None:
    for secret in secrets:
        assert secret, "an empty secret proves nothing"
        for part in _parts(secret):
            assert part not in text, f"a secret ({part[:6]}...) was told"
