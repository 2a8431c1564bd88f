"""What a test does when a real tool it needs is missing: fail under CI, skip loudly elsewhere.

A green CI run that skipped the PostgreSQL, browser or Kubernetes half proves nothing, so
with CI=true a missing tool is a failure; on a developer's machine it is a loud skip.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    """Fail (under CI) or skip (elsewhere) with `MISSING TOOL: message`."""
    text = f"MISSING TOOL: {message}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(text + " (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(text)
