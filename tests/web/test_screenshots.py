"""scripts/screenshots, run as the docs' maintainers run it: every page of its list answers
200 and becomes a PNG of the width asked for, in the directory given."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.web.conftest import _require_browser
from tests.web.screenshots import SHOTS

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is no PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_script_takes_every_shot_of_its_list(tmp_path: Path) -> None:
    _require_browser()
    out = tmp_path / "shots"
    run = subprocess.run(
        [str(SCRIPT), "--out", str(out)], check=False, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(SHOTS), run.stdout
    for shot, line in zip(SHOTS, lines, strict=True):
        assert line.startswith(f"200 {shot.path} ({shot.user}, {shot.width} px) -> "), line
        width, height = _png_size(out / shot.file)
        assert width == shot.width, shot
        # The viewport's height, or for a whole page at least that.
        assert height >= 900 if shot.full_page else height == 900, (shot, height)
    assert sorted(p.name for p in out.iterdir()) == sorted(s.file for s in SHOTS)


def test_the_docs_show_the_shots_they_name() -> None:
    """Every screenshot the docs link is one the script takes (so it stays current)."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    named = {s.file for s in SHOTS}
    linked = set()
    for page in docs.glob("*.md"):
        text = page.read_text()
        linked |= {f for f in (p.name for p in docs.glob("web-*.png")) if f"({f})" in text}
    assert linked <= named, linked - named
    assert all((docs / f).exists() for f in named), named
