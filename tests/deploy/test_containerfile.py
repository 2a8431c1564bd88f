"""The Containerfile, as far as it can be checked without a container engine: its build
stage's context (what it copies, past .containerignore) builds the package whole, the final
stage runs as the user and with the data directory the chart expects, with no build tool."""

from __future__ import annotations

import fnmatch
import zipfile
from pathlib import Path

from tests.deploy import image
from tests.deploy.conftest import CHART, Helm

ROOT = CHART.parents[2]


def _ignored(path: str) -> bool:
    """Whether .containerignore keeps path out of the context (its last matching rule)."""
    ignored = False
    for line in (ROOT / ".containerignore").read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        keep = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not keep
    return ignored


def test_the_build_stage_context_builds_the_whole_package(tmp_path: Path, helm: Helm) -> None:
    build, final = image.stages()
    for source in image.copied():
        assert not _ignored(source), f"{source} is copied but .containerignore drops it"
    assert any("--require-hashes -r requirements.lock" in a for w, a in build if w == "RUN")
    made = image.wheel(tmp_path)
    names = zipfile.ZipFile(made).namelist()
    package = ROOT / "src"
    expected = {
        str(p.relative_to(package))
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert expected <= set(names), sorted(expected - set(names))
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pullkeeper = " in zipfile.ZipFile(made).read(entry_points).decode()

    # The final stage: no package installed there, the chart's user, data directory and
    # arguments.
    assert not [a for w, a in final if w == "RUN" and ("pip" in a or "apt" in a)]
    (deployment,) = [d for d in helm.template() if d["kind"] == "Deployment"]
    chart_pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert dict(final)["USER"] == f"{chart_pod['runAsUser']}:{chart_pod['runAsGroup']}"
    assert "PULLKEEPER_DATA=/var/lib/pullkeeper" in dict(final)["ENV"]
    assert dict(final)["ENTRYPOINT"] == '["pullkeeper"]'
    assert dict(final)["COPY"].startswith("--from=build /opt/pullkeeper")
