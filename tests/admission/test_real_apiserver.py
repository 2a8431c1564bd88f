"""The webhooks called by the real API server: `pullkeeper webhook manifests` applied with
kubectl, the API server calling `pullkeeper serve`'s TLS listener on 127.0.0.1, pods and
Deployments created with kubectl and read back as the server stored them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.admission.pki import CA, Issued
from tests.integration.conftest import Result, isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, Server, free_port, start_server
from tests.kube.real import ControlPlane, RealCluster, require_control_plane
from tests.sync.conftest import eventually


@dataclass
class Setup:
    server: Server
    kube: RealCluster
    data: Path
    webhook_url: str
    env: dict[str, str]

    def pk(self, *args: str, stdin: str | None = None) -> Result:
        return pk(*args, env=self.env, stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.pk(*args, stdin=stdin)
        assert done.returncode == 0, done.describe()
        return done.stdout

    def manifests(self, *flags: str) -> list[dict[str, Any]]:
        out = self.ok("webhook", "manifests", "--data", str(self.data), *flags)
        return [d for d in yaml.safe_load_all(out) if d]

    def install(self, *flags: str) -> None:
        """The printed manifests applied with kubectl, in pullkeeper's own namespace."""
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pullkeeper"}}
        self.kube.apply([namespace])
        self.kube.apply(self.manifests("--url", self.webhook_url, "--cluster", "c1", *flags))

    def run_pod(self, name: str, image: str, *flags: str) -> Any:
        return self.kube.kubectl(
            "run", name, f"--image={image}", "-n", "shop", "--restart=Never", *flags, check=False
        )

    def admission_records(self) -> list[dict[str, Any]]:
        """The admission audit records, once the webhook has written every one it queued."""
        eventually(
            lambda: (
                "pullkeeper_admission_audit_queued 0.0"
                in httpx.get(f"{self.server.url}/metrics", timeout=10).text
            ),
            what="the queued admission audit records written",
        )
        out = self.ok("audit", "-o", "json")
        return [e for e in json.loads(out)["items"] if e["action"].startswith("admission.")]


@contextmanager
def _pullkeeper_for(kube: RealCluster, tmp_path: Path, port: int, *flags: str) -> Iterator[Setup]:
    """pullkeeper serve with its webhook listener on `port`, cluster c1 registered on the real
    API server, namespace shop, and a cluster-wide quay.io credential delivered there."""
    server = start_server(tmp_path / "server", ["--webhook-port", str(port), *flags])
    try:
        env = isolated_env(tmp_path / "home")
        env.update(PULLKEEPER_SERVER=server.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)
        s = Setup(server, kube, tmp_path / "server" / "data", f"https://127.0.0.1:{port}", env)
        kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
        s.ok("cluster", "create", "c1", "--kubeconfig", str(kubeconfig))
        kube.create("namespaces", {"metadata": {"name": "shop"}})
        s.ok(
            "credential", "create", "quay", "--cluster", "c1", "--scope", "cluster",
            "--provider", "quay", "--username", "robot", "--password-stdin",
            stdin="quay-token-77\n",
        )  # fmt: skip
        eventually(lambda: kube.get("secrets", "quay", "shop"), what="delivered to shop")
        yield s
    finally:
        server.stop()


@pytest.fixture
def setup(real_kube: RealCluster, tmp_path: Path) -> Iterator[Setup]:
    with _pullkeeper_for(real_kube, tmp_path, free_port()) as s:
        yield s


def _stored_pod(setup: Setup, name: str) -> dict[str, Any]:
    found = setup.kube.get("pods", name, "shop")
    assert found is not None, f"no pod {name} stored"
    return found


def test_pods_get_secrets_default_registry_and_always_pull(setup: Setup) -> None:
    setup.ok(
        "policy", "set", "--cluster", "c1", "--default-registry", "quay.io/hub",
        "--allow", "quay.io", "--always-pull",
    )  # fmt: skip
    setup.install()
    made = setup.run_pod("web", "nginx:1.25")
    assert made.returncode == 0, made.stderr
    pod = _stored_pod(setup, "web")
    (container,) = pod["spec"]["containers"]
    # The default registry was applied before the allowlist was checked: quay.io is allowed.
    assert container["image"] == "quay.io/hub/library/nginx:1.25"
    assert container["imagePullPolicy"] == "Always"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "quay"}]
    original = json.loads(pod["metadata"]["annotations"]["pullkeeper.io/original-images"])
    assert list(original.values()) == ["nginx:1.25"]

    # A Deployment's template is mutated too; the ReplicaSet and pod inherit it.
    setup.kube.kubectl("create", "deployment", "api", "-n", "shop", "--image=quay.io/team/api:1")
    stored = setup.kube.get("deployments", "api", "shop")
    assert stored is not None
    template = stored["spec"]["template"]["spec"]
    assert template["imagePullSecrets"] == [{"name": "quay"}]
    assert template["containers"][0]["imagePullPolicy"] == "Always"

    refused = setup.run_pod("elsewhere", "ghcr.io/team/app:1")
    assert refused.returncode != 0
    assert 'admission webhook "validate.pullkeeper.io" denied the request' in refused.stderr
    assert "ghcr.io/team/app:1" in refused.stderr and "quay.io" in refused.stderr
    assert setup.kube.get("pods", "elsewhere", "shop") is None
    (denial,) = [e for e in setup.admission_records() if e["action"] == "admission.deny"]
    assert denial["actor"] == "admin"  # the user the API server says asked


def test_warnings_reach_kubectl_and_dry_runs_leave_no_record(setup: Setup) -> None:
    setup.ok("policy", "set", "--cluster", "c1", "--allow", "quay.io", "--mode", "warn")
    setup.install()
    warned = setup.run_pod("warned", "ghcr.io/team/app:1")
    assert warned.returncode == 0, warned.stderr
    (line,) = [x for x in warned.stderr.splitlines() if x.startswith("Warning: ")]
    assert "ghcr.io/team/app:1" in line
    assert setup.kube.get("pods", "warned", "shop") is not None
    assert [e["action"] for e in setup.admission_records()] == ["admission.warn"]

    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tried", "namespace": "shop"},
        "spec": {"containers": [{"name": "c", "image": "ghcr.io/team/other:1"}]},
    }
    tried = setup.kube.apply([manifest], "--dry-run=server")
    assert "Warning: " in tried.stderr and "ghcr.io/team/other:1" in tried.stderr
    assert setup.kube.get("pods", "tried", "shop") is None
    assert [e["action"] for e in setup.admission_records()] == ["admission.warn"]


def test_the_failure_policies_with_pullkeeper_stopped(setup: Setup) -> None:
    setup.ok("policy", "set", "--cluster", "c1", "--allow", "quay.io")
    setup.install("--timeout", "2")
    setup.server.stop()
    # validate fails closed by default: the API server's own message.
    refused = setup.run_pod("closed", "quay.io/team/app:1")
    assert refused.returncode != 0
    assert 'failed calling webhook "validate.pullkeeper.io"' in refused.stderr
    # mutate's Ignore and validate's Ignore: the pod goes in, untouched.
    setup.install("--validate-failure-policy", "Ignore", "--timeout", "2")
    let_in = setup.run_pod("open", "quay.io/team/app:1")
    assert let_in.returncode == 0, let_in.stderr
    assert "imagePullSecrets" not in _stored_pod(setup, "open")["spec"]


def test_the_service_form_is_accepted_by_the_api_server(setup: Setup) -> None:
    """In-cluster form (a Service, the cluster named in the path): the API server's
    validation of service paths and webhook configurations accepts it."""
    docs = setup.manifests("--cluster", "c1")
    hooks = [d for d in docs if d["kind"].endswith("WebhookConfiguration")]
    paths = [h["webhooks"][0]["clientConfig"]["service"]["path"] for h in hooks]
    assert paths == ["/admission/mutate/c1", "/admission/validate/c1"]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pullkeeper"}}
    setup.kube.apply([namespace])
    checked = setup.kube.apply(docs, "--dry-run=server")
    assert "(server dry run)" in checked.stdout


def _admission_config(directory: Path, webhook_host: str, client: Issued) -> Path:
    """The API server's AdmissionConfiguration, as docs/kubernetes.md tells it: both webhook
    plugins read a kubeconfig whose user, named after the webhook's host:port, is a client
    certificate."""
    kubeconfig = directory / "webhook-kubeconfig.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {
                        "name": webhook_host,
                        "user": {
                            "client-certificate": str(client.cert),
                            "client-key": str(client.key),
                        },
                    }
                ],
            }
        )
    )
    plugin = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig),
    }
    config = directory / "admission-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [
                    {"name": "ValidatingAdmissionWebhook", "configuration": plugin},
                    {"name": "MutatingAdmissionWebhook", "configuration": plugin},
                ],
            }
        )
    )
    return config


def test_the_api_server_presents_its_client_certificate(tmp_path: Path) -> None:
    """`--webhook-client-ca`: a control plane of its own, started with an admission
    configuration that gives the API server a client certificate for the webhook, calls the
    listener that requires one and gets its answers (test_listener_security shows that a
    caller without that certificate is refused)."""
    require_control_plane()
    callers = CA(tmp_path / "callers", "kube-apiserver callers")
    port = free_port()
    config = _admission_config(
        tmp_path / "callers", f"127.0.0.1:{port}", callers.client("kube-apiserver")
    )
    plane = ControlPlane(tmp_path / "kube", f"--admission-control-config-file={config}").start()
    try:
        kube = RealCluster(plane)
        flags = ("--webhook-client-ca", str(callers.cert))
        with _pullkeeper_for(kube, tmp_path / "pk", port, *flags) as setup:
            setup.ok("policy", "set", "--cluster", "c1", "--allow", "quay.io")
            setup.install()
            made = setup.run_pod("web", "quay.io/team/app:1")
            assert made.returncode == 0, made.stderr
            assert _stored_pod(setup, "web")["spec"]["imagePullSecrets"] == [{"name": "quay"}]
            refused = setup.run_pod("elsewhere", "ghcr.io/team/app:1")
            assert 'admission webhook "validate.pullkeeper.io" denied the request' in (
                refused.stderr
            )
    finally:
        plane.stop()
