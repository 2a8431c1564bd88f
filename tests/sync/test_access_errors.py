"""A cluster pullkeeper cannot reach or may not use is reported with what failed and what to
do, never as a traceback, and no other cluster waits for it: each access setting gone wrong
against the real API server, beside a cluster that works."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pullkeeper.services import sync
from pullkeeper.store.models import Credential
from tests.kube.real import RealCluster
from tests.registry.pki import self_signed_server
from tests.sync.conftest import World, eventually


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_bad_access_is_reported_per_cluster_and_holds_up_no_other(
    make_world: Callable[..., World],
    real_kube: RealCluster,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = yaml.safe_load(real_kube.kubeconfig(tmp_path / "good.kubeconfig").read_text())

    def variant(name: str, change: Callable[[dict[str, Any]], None]) -> str:
        config = yaml.safe_load(yaml.safe_dump(good))
        change(config)
        path = tmp_path / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return str(path)

    def set_token(c: dict[str, Any]) -> None:
        c["users"][0]["user"]["token"] = "not-a-token-the-server-knows"

    def set_ca(c: dict[str, Any]) -> None:
        # A CA that did not sign the API server's certificate.
        other = self_signed_server(tmp_path / "other-ca").cert_file.read_bytes()
        c["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(other).decode()

    def set_port(c: dict[str, Any]) -> None:
        c["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"

    bad = {
        "nofile": (
            {"kubeconfig": str(tmp_path / "nowhere.kubeconfig")},
            "nowhere.kubeconfig does not exist on the server; put it there or set the cluster's "
            "kubeconfig path",
        ),
        "nocontext": (
            {"kubeconfig": variant("context", lambda c: None), "context": "nope"},
            "has no context 'nope' (it has: test); set the cluster's context to one of them",
        ),
        "token": (
            {"kubeconfig": variant("token", set_token)},
            "Unauthorized (the cluster refused pullkeeper's credentials; check the kubeconfig's "
            "user)",
        ),
        "ca": (
            {"kubeconfig": variant("ca", set_ca)},
            "its certificate is not signed by the kubeconfig's certificate-authority",
        ),
        "port": (
            {"kubeconfig": variant("port", set_port)},
            "Connection refused (check the kubeconfig's server address, and that the API server "
            "runs)",
        ),
    }
    world = make_world()
    world.cluster("c1", real_kube)
    for name, (access, _) in bad.items():
        world.cluster(name, **access)
    world.namespace("shop")
    ok = world.cred("wide")
    others = {name: world.cred("wide", cluster=name) for name in bad}
    eventually(lambda: world.status(ok).get(("c1", "shop")) == ("in_sync", ""), timeout=20)

    def error_of(name: str) -> str:
        with world.server.reading() as session:
            cred = session.get(Credential, others[name])
            assert cred is not None
            status = sync.status_of(world.server, cred)
        assert status["items"] == []
        return status["cluster_error"] or ""

    for name, (_, says) in bad.items():
        reported = eventually(lambda name=name: error_of(name), what=f"{name} reported")
        assert says in reported, (name, reported)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], "a failure logged as a traceback"
