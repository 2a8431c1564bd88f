"""The documentation site builds with `mkdocs build --strict`: a broken link or anchor, a page
left out of the nav, or a warning of any plugin fails the test. The generated pages (the CLI
reference from the click commands, the REST API from the app's OpenAPI document) are held to
the code they come from."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pullkeeper.cli.main import _COMMANDS
from tests.tools import missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        missing("mkdocs (install the test extra: requirements-test.lock)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    warnings = [line for line in built.stderr.splitlines() if "WARNING" in line]
    assert built.returncode == 0 and not warnings, built.stderr
    return out


def test_every_command_is_in_the_cli_reference(site: Path) -> None:
    page = (site / "reference" / "cli" / "index.html").read_text()
    anchors = set(re.findall(r'<h\d id="([^"]+)"', page))
    assert {f"pullkeeper-{name}" for name in _COMMANDS} <= anchors
    # Subcommands too, from the commands' own tree (depth and lazy loading included).
    assert {"pullkeeper-credential-create", "pullkeeper-cluster-node-token-create"} <= anchors


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_operation_is_in_the_api_reference(site: Path) -> None:
    document = _hooks().openapi_document()
    page = (site / "reference" / "api" / "index.html").read_text()
    for path, ops in document["paths"].items():
        for method in ops:
            assert f"<code>{method.upper()} {path}</code>" in page, (method, path)
    served = (site / "reference" / "openapi.json").read_text()
    assert '"/api/v1/credentials"' in served


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    remote = re.compile(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//[^"]+"')
    for page in site.rglob("*.html"):
        found = remote.findall(page.read_text())
        assert not found, (page.relative_to(site), found)
