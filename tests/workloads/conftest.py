"""A cluster and a pullkeeper server that syncs Secrets into it: `cluster` is the real API
server (with the deployment and replicaset controllers; its pods stay Pending, since no
kubelet runs), `pulling_cluster` the fake API server whose kubelet stand-in pulls from the
real token registry with the Secrets the pod names.

The kubelet stand-in does what the real one does with imagePullSecrets: it reads each named
Secret from the cluster, keeps the entries for the image's registry, and tries them in order
with a real client (skopeo), stopping at the first that works; with none, it pulls
anonymously. So a Deployment pulls only when pullkeeper gave it the right Secrets and the
sync put them in its namespace.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.real import RealCluster
from tests.registry.conftest import oci_layouts, token_registry  # noqa: F401
from tests.registry.servers import TokenRegistry
from tests.server.conftest import Backend, Env, env, template  # noqa: F401

T = TypeVar("T")
PROJECT_LABEL = "pullkeeper.io/project"
WRONG_PASSWORD = "not-alices-password-4711"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(**kw): Settings overrides for the `env` fixture's server"
    )


@pytest.fixture(scope="session")
def backend() -> Backend:
    """SQLite only: the store side of these use cases is the credentials' and is run on
    PostgreSQL by tests/server; here the cluster and the registry are what is new."""
    return Backend("sqlite")


def eventually(check: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or check}; last: {value!r}")
        time.sleep(0.02)


class Kubelet:
    """The `pull` callback of the fake's simulator, pulling from a real registry."""

    def __init__(self, fake: FakeApiServer, registry: TokenRegistry) -> None:
        self.fake, self.registry = fake, registry
        self.tried: list[tuple[str, str, str]] = []  # (image, secret or "anonymous", outcome)

    def __call__(self, image: str, namespace: str, secret_names: list[str]) -> tuple[bool, str]:
        host = image.split("/", 1)[0]
        logins = []
        for name in secret_names:
            secret = self.fake.get("secrets", name, namespace)
            if secret is None:
                continue
            config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
            entry = (config.get("auths") or {}).get(host)
            if entry is not None:
                logins.append((name, base64.b64decode(entry["auth"]).decode()))
        errors = []
        for name, creds in logins or [("anonymous", "")]:
            auth = ["--creds", creds] if creds else ["--no-creds"]
            result = self.registry.skopeo(
                "inspect", "--raw", *self.registry.tls_args(), *auth, f"docker://{image}"
            )
            ok = result.returncode == 0
            self.tried.append((image, name, "ok" if ok else "failed"))
            if ok:
                return True, ""
            errors.append(_skopeo_error(result.stderr))
        return False, (
            f'rpc error: code = Unknown desc = failed to pull and unpack image "{image}": '
            f'failed to resolve reference "{image}": {errors[-1]}'
        )


def _skopeo_error(stderr: str) -> str:
    """The reason in skopeo's `level=fatal msg="..."` line, without its preamble."""
    lines = stderr.strip().splitlines() or ["failed"]
    m = re.search(r'msg="(.*)"$', lines[-1])
    text = m.group(1).replace('\\"', '"') if m else lines[-1]
    return re.sub(r'^Error parsing image name "[^"]*": ', "", text)


@dataclass
class Cluster:
    env: Env
    kube: FakeApiServer | RealCluster
    kubelet: Kubelet | None  # on the fake only
    registry: TokenRegistry
    creds: dict[str, dict[str, Any]]

    def image(self, name: str = "team-a/app:v1") -> str:
        return self.registry.ref(name)

    def secrets_in(self, namespace: str) -> set[str]:
        return {s["metadata"]["name"] for s in self.kube.objects("secrets", namespace)}

    def delivered(self, namespace: str, *names: str) -> None:
        eventually(
            lambda: set(names) <= self.secrets_in(namespace),
            what=f"the sync delivers {names} to {namespace}",
        )

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        found = self.kube.get("deployments", name, namespace)
        assert found is not None, f"no Deployment {namespace}/{name} in the cluster"
        return found


def trust(data: Path, registry: TokenRegistry) -> None:
    """The server trusts the registry's CA where it looks for it: DATA/certs.d/HOST/ca.crt."""
    assert registry.ca_file is not None
    target = data / "certs.d" / registry.host
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(registry.ca_file, target / "ca.crt")


def start_fake(
    registry: TokenRegistry, namespaces: dict[str, str | None]
) -> tuple[FakeApiServer, Kubelet]:
    fake = FakeApiServer().start()
    make_namespaces(fake, namespaces)
    kubelet = Kubelet(fake, registry)
    fake.simulate(kubelet)
    return fake, kubelet


def make_namespaces(kube: FakeApiServer | RealCluster, namespaces: dict[str, str | None]) -> None:
    for ns, project in namespaces.items():
        labels = {PROJECT_LABEL: project} if project else {}
        kube.create("namespaces", {"metadata": {"name": ns, "labels": labels}})


@pytest.fixture
def cluster(
    env: Env,  # noqa: F811
    token_registry: TokenRegistry,  # noqa: F811
    real_kube: RealCluster,
    tmp_path: Path,
) -> Cluster:
    """Cluster c1 on the real API server, with the credentials of `pulling_cluster`."""
    trust(env.data, token_registry)
    make_namespaces(real_kube, {"shop": "web", "cart": "store"})
    return _registered(env, real_kube, None, token_registry, tmp_path)


@pytest.fixture
def pulling_cluster(
    env: Env,  # noqa: F811
    token_registry: TokenRegistry,  # noqa: F811
    tmp_path: Path,
) -> Iterator[Cluster]:
    """Cluster c1 on the fake, whose kubelet pulls. shop (project web) is reached, for the
    registry, by a namespace credential with a wrong password, web's project credential
    (alice) and a cluster-wide one (bob, who may not pull team-a/*), in that kubelet order;
    plus a namespace credential of shop for quay.io and one of cart (project store) for the
    registry, which a Deployment in shop must not get."""
    trust(env.data, token_registry)
    fake, kubelet = start_fake(token_registry, {"shop": "web", "cart": "store"})
    try:
        yield _registered(env, fake, kubelet, token_registry, tmp_path)
    finally:
        fake.stop()


def _registered(
    env: Env,  # noqa: F811
    kube: FakeApiServer | RealCluster,
    kubelet: Kubelet | None,
    token_registry: TokenRegistry,  # noqa: F811
    tmp_path: Path,
) -> Cluster:
    env.cluster("c1", kubeconfig=str(kube.kubeconfig(tmp_path / "kubeconfig")))
    web, store = env.project("web"), env.project("store")
    env.namespace("shop", web["id"])
    env.namespace("cart", store["id"])
    host, alice, bob = token_registry.host, token_registry.alice, token_registry.bob
    creds = {
        "shop-wrong": env.cred(
            "shop-wrong",
            scope="namespace",
            namespace="shop",
            server=host,
            username=alice.username,
            password=WRONG_PASSWORD,
        ),
        "web-alice": env.cred(
            "web-alice",
            scope="project",
            project=web["id"],
            server=host,
            username=alice.username,
            password=alice.password,
        ),
        "wide-bob": env.cred("wide-bob", server=host, username=bob.username, password=bob.password),
        "shop-quay": env.cred(
            "shop-quay", scope="namespace", namespace="shop", server="quay.io", provider="quay"
        ),
        "cart-alice": env.cred(
            "cart-alice",
            scope="namespace",
            namespace="cart",
            server=host,
            username=alice.username,
            password=WRONG_PASSWORD + "-cart",
        ),
    }
    return Cluster(env, kube, kubelet, token_registry, creds)
