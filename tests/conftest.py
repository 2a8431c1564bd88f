"""Fixtures every part of the suite may use: the real Kubernetes control plane, and a real
node for it (started only when a test asks for `node`); and how the suite is shared out
among pytest-xdist's workers (scripts/test runs two)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kube.real import ControlPlane, Node, RealCluster, require_control_plane, require_node


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With --dist loadgroup, a module's tests run on one worker, in order, so its module
    fixtures (servers, registries) are made once; and the tests of the real node (one per
    machine: it changes the host) all run on the same worker."""
    for item in items:
        module = item.nodeid.partition("::")[0]
        group = "real-node" if module.startswith("tests/workloads/") else module
        item.add_marker(pytest.mark.xdist_group(group))


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


@pytest.fixture(scope="session")
def node(control_plane: ControlPlane) -> Iterator[Node]:
    """A kubelet with containerd and the scheduler, joined to the control plane, started the
    first time a test asks for it and stopped (host changes undone) at the session's end."""
    require_node()
    started = Node(control_plane).start()
    yield started
    started.stop()
