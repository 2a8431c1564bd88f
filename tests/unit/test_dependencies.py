"""What the code imports is what pyproject.toml declares, and the lock files pin all of it.

A package the code imports but only gets through another package's dependencies breaks the
day that package drops it (lightkube 0.x brought httpx, 1.x brings httpx2). Each lock line
must carry hashes, or `pip install --require-hashes` refuses the whole file.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# A requirement's name, as PEP 508 starts it; compared in PEP 503's normal form.
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
LOCK_LINE = re.compile(r"^([a-z0-9][a-z0-9._-]*(?:\[[^\]]*\])?)==(\S+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        match = NAME.match(requirement)
        assert match, requirement
        names.add(_normal(match.group(1)))
    return names


RUNTIME = _declared(PYPROJECT["project"]["dependencies"])
TEST = RUNTIME | _declared(PYPROJECT["project"]["optional-dependencies"]["test"])


def _imports(folder: Path) -> dict[str, str]:
    """Top-level names imported by the modules under folder -> one file importing each."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(ROOT)))
    return found


def _undeclared(folders: list[str], declared: set[str], local: set[str]) -> list[str]:
    providers = importlib.metadata.packages_distributions()
    wrong = []
    for folder in folders:
        for name, where in _imports(ROOT / folder).items():
            if name in sys.stdlib_module_names or name in local:
                continue
            dists = {_normal(d) for d in providers.get(name, [])}
            if not dists:
                wrong.append(
                    f"{where} imports {name}, which no installed distribution provides "
                    "(declare it, and install from the lock: see docs/dependencies.md)"
                )
            elif not dists & declared:
                wrong.append(f"{where} imports {name} (from {', '.join(sorted(dists))})")
    return wrong


def test_the_package_declares_every_distribution_it_imports() -> None:
    wrong = _undeclared(["src"], RUNTIME, {"pullkeeper"})
    assert not wrong, "add these to [project] dependencies in pyproject.toml:\n" + "\n".join(wrong)


def test_the_tests_declare_every_distribution_they_import() -> None:
    local = {"pullkeeper", "tests"} | {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    wrong = _undeclared(["tests", "benchmarks"], TEST, local)
    assert not wrong, "add these to the test extra in pyproject.toml:\n" + "\n".join(wrong)


def _lock(name: str) -> dict[str, str]:
    """A lock file's pins (name -> version); every one of them must carry a hash."""
    pins: dict[str, str] = {}
    text = (ROOT / name).read_text()
    for entry in re.split(r"\n(?=\S)", text):
        match = LOCK_LINE.match(entry)
        if match is None:
            assert entry.startswith("#"), f"{name}: not a pinned requirement: {entry[:80]}"
            continue
        assert "--hash=sha256:" in entry, f"{name}: {match.group(1)} has no hash"
        pins[_normal(match.group(1).partition("[")[0])] = match.group(2)
    return pins


@pytest.mark.parametrize(
    ("lock", "declared"), [("requirements.lock", RUNTIME), ("requirements-test.lock", TEST)]
)
def test_the_locks_pin_every_declared_dependency_with_hashes(lock: str, declared: set[str]) -> None:
    pins = _lock(lock)
    build = _declared(PYPROJECT["build-system"]["requires"])
    missing = sorted((declared | build) - set(pins))
    assert not missing, f"{lock} lacks {missing}: run scripts/lock after editing pyproject.toml"


def test_the_runtime_lock_has_the_versions_the_tests_ran_with() -> None:
    runtime, test = _lock("requirements.lock"), _lock("requirements-test.lock")
    differ = {n: (v, test.get(n)) for n, v in runtime.items() if test.get(n) != v}
    assert not differ, f"requirements.lock and requirements-test.lock differ: {differ}"
