"""Fixtures: a fake API server per test, a lightkube client and a kubectl runner pointed at it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig

from tests.kube.fake_apiserver import FakeApiServer
from tests.tools import missing

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def fake_kube() -> Iterator[FakeApiServer]:
    """A started fake with the `default` and `kube-system` namespaces; stopped after the test."""
    with FakeApiServer() as fake:
        yield fake


@pytest.fixture
def kubeconfig(fake_kube: FakeApiServer, tmp_path: Path) -> Path:
    """A kubeconfig file for `fake_kube` (context "fake")."""
    return fake_kube.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube_client(kubeconfig: Path) -> Iterator[Client]:
    """A lightkube sync Client for `fake_kube`, loaded from the kubeconfig file as the product
    loads it."""
    client = Client(KubeConfig.from_file(kubeconfig), field_manager="pullkeeper")
    yield client
    client.close()


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """Run the real kubectl against `fake_kube`: `kubectl("get", "ns", "-o", "json")`.

    Skips, loudly, when kubectl is not installed. `input=` feeds stdin; `check=False` keeps a
    failing command's result instead of failing the test."""
    path = KUBECTL if os.access(KUBECTL, os.X_OK) else shutil.which("kubectl")
    if path is None:
        missing(
            f"kubectl is not at {KUBECTL} nor on PATH, so the kubectl tests of the "
            "fake API server do not run here; the machine image ships it"
        )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "KUBECONFIG": str(kubeconfig),
    }

    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [path, "--cache-dir", str(tmp_path / "kube-cache"), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    return run
