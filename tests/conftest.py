"""Fixtures every part of the suite may use: the real Kubernetes control plane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kube.real import ControlPlane, RealCluster, require_control_plane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver and kube-controller-manager, started once for the session."""
    require_control_plane()
    plane = ControlPlane(tmp_path_factory.mktemp("kube")).start()
    yield plane
    plane.stop()


@pytest.fixture
def real_kube(control_plane: ControlPlane) -> Iterator[RealCluster]:
    """The real cluster, left afterwards as the test found it."""
    cluster = RealCluster(control_plane)
    cluster.settle()
    yield cluster
    cluster.cleanup()
