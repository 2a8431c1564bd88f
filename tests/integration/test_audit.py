"""scripts/audit: the real pip-audit over the real test lock, against a stand-in for OSV's
query API on 127.0.0.1 (the real database is not reachable from the test machines).

A known vulnerability in a locked package fails the audit and names the advisory and the
fixed version; a database that cannot be reached or answers errors gives a warning that
nothing was audited, and the run goes on.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.integration.conftest import Result, run
from tests.registry.httpd import LocalHTTPServer, QuietHandler
from tests.tools import missing

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements-test.lock"
# Pins that apply on every platform (no environment marker), which pip-audit must all ask about.
PINNED = re.compile(r"^([a-z0-9][a-z0-9._-]*)(?:\[[^\]]*\])?==(\S+) \\$", re.MULTILINE)


class _Osv(QuietHandler):
    """POST /v1/query {"package": {"name", "ecosystem"}, "version"} as OSV answers it."""

    advisories: ClassVar[dict[tuple[str, str], list[dict[str, Any]]]]
    asked: ClassVar[list[tuple[str, str]]]
    status: ClassVar[int]

    def do_POST(self) -> None:
        query = json.loads(self.read_body())
        package = (query["package"]["name"], query["version"])
        self.asked.append(package)
        if self.status != 200 or query["package"]["ecosystem"] != "PyPI":
            self.send_bytes(self.status, b'{"message": "unavailable"}')
            return
        vulns = self.advisories.get(package)
        self.send_bytes(200, json.dumps({"vulns": vulns} if vulns else {}).encode())


@dataclass
class Osv:
    """The stand-in's query URL, what it knows and what it was asked."""

    url: str
    handler: type[_Osv]


@pytest.fixture
def osv() -> Iterator[Osv]:
    class Handler(_Osv):
        advisories: ClassVar[dict[tuple[str, str], list[dict[str, Any]]]] = {}
        asked: ClassVar[list[tuple[str, str]]] = []
        status: ClassVar[int] = 200

    server = LocalHTTPServer(Handler)
    server.start()
    try:
        yield Osv(f"http://{server.host}/v1/query", Handler)
    finally:
        server.stop()


def _locked() -> dict[str, str]:
    return {name: version for name, version in PINNED.findall(LOCK.read_text())}


def _audit(url: str, tmp_path: Path) -> Result:
    try:
        import pip_audit  # noqa: F401
    except ImportError:
        missing("the Python package pip-audit (pip install -r requirements-test.lock)")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PULLKEEPER_AUDIT_OSV_URL"] = url
    command = [sys.executable, str(ROOT / "scripts/audit"), str(LOCK)]
    return run([*command, "--cache-dir", str(tmp_path / "cache")], env=env, cwd=ROOT)


def test_a_locked_package_with_a_known_vulnerability_fails_the_audit(
    osv: Osv, tmp_path: Path
) -> None:
    locked = _locked()
    osv.handler.advisories[("starlette", locked["starlette"])] = [
        {
            "id": "GHSA-test-0001",
            "aliases": ["CVE-2099-0001"],
            "summary": "Crafted multipart bodies exhaust memory",
            "affected": [
                {
                    "package": {"name": "starlette", "ecosystem": "PyPI"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}
                    ],
                }
            ],
        }
    ]
    result = _audit(osv.url, tmp_path)
    assert result.returncode == 1, result.describe()
    line = next(x for x in result.stdout.splitlines() if x.startswith("starlette "))
    assert line.startswith(f"starlette {locked['starlette']}: "), result.describe()
    assert "GHSA-test-0001" in line and "CVE-2099-0001" in line and "fixed in: 99.0" in line
    assert "Crafted multipart bodies exhaust memory" in result.stdout
    assert "1 of" in result.stderr and "known vulnerabilities" in result.stderr
    # Every package the lock pins for all platforms was asked about, at its locked version.
    assert set(locked.items()) <= set(osv.handler.asked), set(locked.items()) - set(
        osv.handler.asked
    )


def test_a_lock_without_known_vulnerabilities_passes(osv: Osv, tmp_path: Path) -> None:
    result = _audit(osv.url, tmp_path)
    assert result.returncode == 0, result.describe()
    assert "no known vulnerabilities" in result.stdout
    assert "WARNING" not in result.stderr, result.describe()


def test_a_database_answering_errors_warns_and_lets_the_run_go_on(osv: Osv, tmp_path: Path) -> None:
    osv.handler.status = 503
    result = _audit(osv.url, tmp_path)
    assert result.returncode == 0, result.describe()
    assert "WARNING" in result.stderr and "NOT audited" in result.stderr, result.describe()
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_warns_and_lets_the_run_go_on(tmp_path: Path) -> None:
    # A port nothing listens on: the stand-in's, once it is stopped.
    server = LocalHTTPServer(QuietHandler)
    url = f"http://{server.host}/v1/query"
    server.server_close()
    result = _audit(url, tmp_path)
    assert result.returncode == 0, result.describe()
    assert "could not be reached" in result.stderr and "NOT audited" in result.stderr
    assert "Traceback" not in result.stderr
