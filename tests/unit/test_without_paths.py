"""A cluster's sync error as non-admins see it: the server's file paths left out, the rest
(addresses, words) kept."""

from __future__ import annotations

import pytest

from pullkeeper.services.sync.statuses import without_paths


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "the kubeconfig /var/lib/pullkeeper/kubeconfigs/ab12.yaml does not exist on the "
            "server; put it there or set the cluster's kubeconfig path",
            "the kubeconfig (a file on the server) does not exist on the server; put it there "
            "or set the cluster's kubeconfig path",
        ),
        (
            "cannot load the cluster's access settings: [Errno 13] Permission denied: "
            "'/etc/pk/kc.yaml'",
            "cannot load the cluster's access settings: [Errno 13] Permission denied: "
            "'(a file on the server)'",
        ),
        (
            "listing namespaces: cannot reach the API server: ConnectError: "
            "https://127.0.0.1:6443/api/v1/namespaces refused",
            "listing namespaces: cannot reach the API server: ConnectError: "
            "https://127.0.0.1:6443/api/v1/namespaces refused",
        ),
        ("the cluster has no kubeconfig; set its path (and context)", None),
        ("it has: a/b, c", None),
    ],
)
def test_paths_are_left_out(message: str, shown: str | None) -> None:
    assert without_paths(message) == (message if shown is None else shown)
