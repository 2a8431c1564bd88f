"""The Helm chart's Deployment on the real node, with the product's real image: `helm install`
with only the values a test cluster needs (the image's repository, the node's toleration, no
sync: the API server listens on the host's loopback, out of a pod's reach) makes a pod that
the chart's own probes find ready, that runs as uid 10001 on a read-only root file system
with its SQLite store on a PersistentVolume, and that answers from its pod address; the API
server calls its admission webhook through the chart's webhook Service (resolved to the
pod's endpoint: scripts/kube runs the API server with --enable-aggregator-routing), so a
pod created in another namespace gets the in-cluster pullkeeper's Secrets or its refusal.

The image is built by tests/deploy/image.py from the Containerfile's steps (no container
engine runs here) and pushed to a plain-HTTP registry on loopback that the node trusts.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import pullkeeper
from tests.deploy import image
from tests.deploy.conftest import CHART, NAMESPACE, Helm, helm_built  # noqa: F401
from tests.integration.conftest import isolated_env, pk_ok
from tests.kube.real import CLUSTER_KINDS, NODE_TAINT, Node, RealCluster
from tests.registry.conftest import plain_registry  # noqa: F401
from tests.registry.servers import PlainRegistry
from tests.workloads.conftest import eventually, make_namespaces

pytestmark = pytest.mark.integration

RELEASE = "pullkeeper"
UID = 10001  # the Containerfile's user, which the chart runs as
REPOSITORY = "pullkeeper/pullkeeper"
ALLOWED = "team-a/app:v1"  # in every test registry
PASSWORD = "reg-robot-pw-5521"  # a throwaway test credential


@pytest.fixture(scope="module")
def product_image(
    tmp_path_factory: pytest.TempPathFactory,
    node: Node,
    plain_registry: PlainRegistry,  # noqa: F811
) -> str:
    """The image's repository in the plain registry (tagged with the package's version, the
    chart's appVersion), whose host the node pulls from over HTTP."""
    image.require()
    work = tmp_path_factory.mktemp("image")
    image.build(work / "layout", pullkeeper.__version__, work)
    repository = plain_registry.ref(REPOSITORY)
    pushed = plain_registry.skopeo(
        "copy",
        "--quiet",
        *plain_registry.tls_args("dest-"),
        f"oci:{work / 'layout'}:{pullkeeper.__version__}",
        f"docker://{repository}:{pullkeeper.__version__}",
    )
    assert pushed.returncode == 0, pushed.describe()
    node.trust(plain_registry.host, None)
    return repository


@dataclass
class Release:
    kube: RealCluster
    helm: Helm
    data: Path  # the PersistentVolume's directory on the host
    pod: dict[str, Any]

    @property
    def ip(self) -> str:
        return str(self.pod["status"]["podIP"])

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kube.kubectl(*args, check=check)

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        name = self.pod["metadata"]["name"]
        return self.kubectl("exec", "-n", NAMESPACE, name, "--", *command, check=False)

    def log(self) -> str:
        return self.kubectl("logs", "-n", NAMESPACE, self.pod["metadata"]["name"]).stdout

    def explain(self) -> str:
        """What the release's pods and events say, and the server's log, for a failure."""
        seen = self.kubectl("get", "pods,pvc,events", "-n", NAMESPACE, "-o", "wide", check=False)
        logs = self.kubectl("logs", "-n", NAMESPACE, f"deployment/{RELEASE}", check=False)
        return f"{seen.stdout}{seen.stderr}\n{logs.stdout[-3000:]}{logs.stderr}"


def _volume(data: Path) -> dict[str, Any]:
    """A directory of the host as the PersistentVolume of the chart's claim, bound to it
    alone (there is no provisioner here)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{RELEASE}-data-on-node"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(data), "type": "Directory"},
            "claimRef": {"namespace": NAMESPACE, "name": f"{RELEASE}-data"},
        },
    }


@pytest.fixture
def release(
    real_kube: RealCluster,
    helm_built: None,  # noqa: F811
    product_image: str,
    tmp_path: Path,
) -> Iterator[Release]:
    """The chart installed with the product's image, once `helm install --wait` has seen its
    Deployment ready; uninstalled after."""
    helm = Helm(real_kube.plane.directory / "kubeconfig")
    values = (
        *("--set", f"image.repository={product_image}"),
        *("--set", "sync.enabled=false"),
        "--set-json",
        "tolerations=" + json.dumps([{"key": NODE_TAINT, "operator": "Exists"}]),
    )
    # Whatever the chart makes cluster-wide goes after the test even if the uninstall does
    # not: a webhook with failurePolicy Fail left behind would refuse the next tests' pods.
    for doc in helm.template():
        if doc["kind"] in CLUSTER_KINDS:
            real_kube._applied.append((doc["kind"], doc["metadata"]["name"]))
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, UID, UID)  # a hostPath volume does not get the pod's fsGroup
    real_kube.apply([_volume(data)])
    real_kube._namespaces.append(NAMESPACE)  # removed after the test, with what Helm kept
    installed = Release(real_kube, helm, data, {})
    try:
        done = helm.run(
            *("install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", *values),
            *("--wait", "--timeout", "4m"),
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, f"{done.stderr}\n{installed.explain()}"
        (installed.pod,) = real_kube.objects("pods", NAMESPACE)
        yield installed
    finally:
        helm.run("uninstall", RELEASE, "-n", NAMESPACE, "--ignore-not-found", check=False)


def _condition(pod: dict[str, Any], kind: str) -> str | None:
    found = [c["status"] for c in pod["status"].get("conditions", []) if c["type"] == kind]
    return found[0] if found else None


def test_the_deployment_runs_ready_non_root_read_only_and_serves(release: Release) -> None:
    pod = release.pod
    assert pod["spec"]["nodeName"] == "localhost"
    assert _condition(pod, "Ready") == "True", release.explain()
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and status["restartCount"] == 0, status
    # Ready through the chart's own probes, which the kubelet sends from the host.
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    log = release.log()
    assert '"GET /readyz HTTP/1.1" 200' in log and '"GET /healthz HTTP/1.1" 200' in log, log

    # The Containerfile's user on a read-only root: only the chart's volumes take writes.
    assert release.exec("id", "-u").stdout.strip() == str(UID)
    refused = release.exec("touch", "/written-by-a-test")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused
    assert release.exec("touch", "/tmp/written-by-a-test").returncode == 0
    # The SQLite store is on the PersistentVolume: the host's directory, written as 10001.
    store = release.data / "pullkeeper.db"
    assert store.exists() and store.stat().st_uid == UID, sorted(release.data.iterdir())

    # It serves from its pod address.
    for path, answer in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        got = httpx.get(f"http://{release.ip}:8080{path}", timeout=10)
        assert (got.status_code, got.json()) == (200, answer)


def test_the_api_server_calls_its_webhook_through_the_service(
    release: Release,
    plain_registry: PlainRegistry,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube = release.kube
    admin = kube.get("secrets", f"{RELEASE}-admin", NAMESPACE)
    assert admin is not None
    token = base64.b64decode(admin["data"]["token"]).decode()
    env = isolated_env(tmp_path / "home")
    env.update(PULLKEEPER_SERVER=f"http://{release.ip}:8080", PULLKEEPER_TOKEN=token)
    host = plain_registry.host
    pk_ok("cluster", "create", "local", "--access", "in-cluster", env=env)
    pk_ok("policy", "set", "--cluster", "local", "--allow", host, env=env)
    pk_ok(
        *("credential", "create", "reg", "--cluster", "local", "--scope", "cluster"),
        *("--provider", "custom", "--registry", host, "--username", "robot", "--password-stdin"),
        stdin=PASSWORD + "\n",
        env=env,
    )
    make_namespaces(kube, {"shop": None})  # its pods stay Pending: no toleration

    def run(name: str, image_ref: str, *flags: str) -> subprocess.CompletedProcess[str]:
        return release.kubectl(
            *("run", name, f"--image={image_ref}", "-n", "shop", "--restart=Never", *flags),
            check=False,
        )

    def secrets_of(made: subprocess.CompletedProcess[str]) -> Any:
        return made.returncode == 0 and json.loads(made.stdout)["spec"].get("imagePullSecrets")

    # The last change has reached the webhook's index once a server-side dry run shows it.
    allowed = f"{host}/{ALLOWED}"
    eventually(
        lambda: secrets_of(run("probe", allowed, "--dry-run=server", "-o", "json")),
        timeout=30,
        what="the credential reaches the webhook",
    )
    made = run("web", allowed)
    assert made.returncode == 0, made.stderr
    stored = kube.get("pods", "web", "shop")
    assert stored is not None and stored["spec"]["imagePullSecrets"] == [{"name": "reg"}]

    refused = run("hub", "docker.io/library/nginx:1.25")
    assert refused.returncode != 0
    assert 'admission webhook "validate.pullkeeper.io" denied the request' in refused.stderr
    assert "docker.io, which is not on the allowlist" in refused.stderr, refused.stderr
    assert kube.get("pods", "hub", "shop") is None

    # The in-cluster server answered the reviews, and kept the secrets out of its log.
    log = release.log()
    assert '"POST /admission/mutate' in log and '"POST /admission/validate' in log
    assert PASSWORD not in log and token not in log

    # Uninstalled, nothing of the webhook is left to refuse a pod.
    release.helm.run("uninstall", RELEASE, "-n", NAMESPACE, "--wait", timeout=180)
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        assert kube.kubectl("get", kind, "-o", "name").stdout.strip() == "", kind
    assert run("hub", "docker.io/library/nginx:1.25").returncode == 0
