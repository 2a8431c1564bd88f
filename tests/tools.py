"""What a test does when a real tool it needs is missing: fail under CI, skip loudly elsewhere;
and where the project's own `pullkeeper` executable is.

A green CI run that skipped the PostgreSQL, browser or Kubernetes half proves nothing, so
with CI=true a missing tool is a failure; on a developer's machine it is a loud skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

_T = TypeVar("_T")


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """asyncio.run in a thread of its own: a test process whose main thread holds a running
    loop (Playwright's sync API keeps one while the browser fixture lives) cannot start one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def missing(message: str) -> NoReturn:
    """Fail (under CI) or skip (elsewhere) with `MISSING TOOL: message`."""
    text = f"MISSING TOOL: {message}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(text + " (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(text)


def pullkeeper_executable() -> str:
    """The console script of the installed project, beside the running interpreter."""
    beside = Path(sys.executable).with_name("pullkeeper")
    if beside.exists():
        return str(beside)
    found = shutil.which("pullkeeper")
    if found is None:
        pytest.fail(
            "the pullkeeper console script is not installed (install the project: "
            "pip install -e '.[test]')"
        )
    return found
