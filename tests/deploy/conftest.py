"""Helm, built from its Go module by scripts/kube, and the chart rendered with it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube.real import SCRIPT
from tests.tools import missing

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "pullkeeper"
NAMESPACE = "pullkeeper"

Obj = dict[str, Any]


class Helm:
    def __init__(self, kubeconfig: Path | None = None) -> None:
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        flags = ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []
        done = subprocess.run(
            [str(SCRIPT), "helm", *args, *flags],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)}: {done.stderr}")
        return done

    def template(self, *sets: str, release: str = "pullkeeper") -> list[Obj]:
        """The chart's objects for these --set values, in namespace pullkeeper."""
        out = self.run("template", release, str(CHART), "-n", NAMESPACE, *_sets(sets)).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    def refused(self, *sets: str) -> str:
        """What helm says when the chart refuses these values (it must)."""
        done = self.run("template", "pullkeeper", str(CHART), *_sets(sets), check=False)
        assert done.returncode != 0, f"the chart took {sets}"
        return done.stderr


def _sets(sets: tuple[str, ...]) -> list[str]:
    return [flag for s in sets for flag in ("--set", s)]


@pytest.fixture(scope="session")
def helm_built() -> None:
    found = subprocess.run(
        [str(SCRIPT), "check", "helm"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        missing(f"{found.stdout.strip()}: the chart tests do not run (scripts/test builds it)")


@pytest.fixture
def helm(helm_built: None) -> Helm:
    return Helm()


def by_kind(docs: list[Obj]) -> dict[str, list[Obj]]:
    kinds: dict[str, list[Obj]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    return kinds


def one(docs: list[Obj], kind: str, name: str | None = None) -> Obj:
    (found,) = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    return found
