"""Test connection's adapter against the real API server: the permissions asked several at
a time, answered in the order asked; and a kubeconfig whose certificate data is not PEM, or
a server that is no Kubernetes API server, refused in words (a KubeError), never a crash."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pullkeeper.kube.access_review import Permission, probe
from pullkeeper.kube.api import Access, KubeError, client_for
from pullkeeper.services.cluster_connection import NEEDED
from tests.kube.real import RealCluster

pytestmark = pytest.mark.integration


def _config(real_kube: RealCluster, tmp_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(real_kube.kubeconfig(tmp_path / "k.yaml").read_text())
    return loaded


def test_every_review_is_answered_in_order_and_several_run_at_once(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    # An account that may do nothing: every permission asked is missing, in the order asked.
    real_kube.create("namespaces", {"metadata": {"name": "ar-none"}})
    real_kube.create("serviceaccounts", {"metadata": {"name": "nobody"}}, "ar-none")
    issued = real_kube.call(
        "POST",
        "/api/v1/namespaces/ar-none/serviceaccounts/nobody/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert issued.status_code == 201, issued.text
    path = real_kube.kubeconfig(tmp_path / "k.yaml", issued.json()["status"]["token"])
    config = yaml.safe_load(path.read_text())
    asked = [*NEEDED, Permission("example.invalid", "widgets", "frobnicate")]
    since = real_kube.plane.audit_end()
    found = probe(Access(config=config, context="test"), asked, workers=8)
    assert found.missing == tuple(asked)
    assert found.version == real_kube.call("GET", "/version").json()["gitVersion"]
    events, _ = real_kube.plane.audit("system:serviceaccount:ar-none:nobody", since)
    reviews = [
        e
        for e in events
        if e.get("objectRef", {}).get("resource") == "selfsubjectaccessreviews"
        and e["stage"] == "ResponseComplete"
    ]
    assert len(reviews) == len(asked)

    def at(e: dict[str, Any], key: str) -> datetime:
        return datetime.fromisoformat(e[key].replace("Z", "+00:00"))

    # Concurrent: some review reached the server before another one's answer was complete.
    assert any(
        at(b, "requestReceivedTimestamp") < at(a, "stageTimestamp")
        and at(a, "requestReceivedTimestamp") <= at(b, "requestReceivedTimestamp")
        for a in reviews
        for b in reviews
        if a is not b
    )


def test_certificate_data_that_is_not_pem_is_a_kube_error_in_words(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    config = _config(real_kube, tmp_path)
    config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        b"not a cert"
    ).decode()
    with pytest.raises(KubeError) as caught:
        client_for(Access(config=config))
    assert "certificate-authority-data" in caught.value.message
    assert "not a PEM certificate" in caught.value.message


class _NotKubernetes(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>a web server, not Kubernetes</html>" if self.path == "/version" else b""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_kubernetes() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotKubernetes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_not_kubernetes_is_a_kube_error_in_words(not_kubernetes: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": not_kubernetes}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    with pytest.raises(KubeError) as caught:
        probe(Access(config=config), NEEDED)
    assert "not a Kubernetes API server's" in caught.value.message
