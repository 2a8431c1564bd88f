"""A cluster and a pullkeeper server that syncs Secrets into it: `cluster` is the real API
server (with the deployment and replicaset controllers; its pods stay Pending, since they do
not tolerate the node's taint, if a node runs at all), `pulling_cluster` the same API server
with a real node whose kubelet and containerd pull from the real token registry with the
Secrets the pod names, and run what they pulled.

`Kubelet` is the fake API server's kubelet stand-in, for what a real node cannot do on demand
(hold a pull while a page looks: tests/web/test_workloads.py): it reads each named Secret,
keeps the entries for the image's registry and tries them in order with a real client
(skopeo), stopping at the first that works, as the real kubelet does, and reports a failure
with the real kubelet's words.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.real import TOLERATE_NODE, Node, RealCluster
from tests.registry.conftest import oci_layouts, token_registry  # noqa: F401
from tests.registry.servers import TokenRegistry
from tests.server.conftest import Backend, Env, env, template  # noqa: F401

T = TypeVar("T")
PROJECT_LABEL = "pullkeeper.io/project"
WRONG_PASSWORD = "not-alices-password-4711"
# An image the node can run (Debian's static busybox), in a repository alice may pull.
RUNNABLE = "team-a/pod:v1"


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
            errors.append(
                f'failed to pull and unpack image "{image}": failed to resolve reference '
                f'"{image}": {_skopeo_error(result.stderr)}'
            )
        # The kubelet's words: one error per credential tried, joined as a list when several.
        return False, errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"


def _skopeo_error(stderr: str) -> str:
    """The reason in skopeo's `level=fatal msg="..."` line, without its preamble."""
    lines = stderr.strip().splitlines() or ["failed"]
    m = re.search(r'msg="(.*)"$', lines[-1])
    text = m.group(1).replace('\\"', '"') if m else lines[-1]
    return re.sub(r'^Error parsing image name "[^"]*": ', "", text)


@dataclass
class Cluster:
    env: Env
    kube: RealCluster
    node: Node | None  # the real node, for `pulling_cluster`
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


def make_namespaces(
    kube: RealCluster, namespaces: dict[str, str | None], on_node: bool = False
) -> None:
    """Namespaces, labelled with their project; with `on_node`, their pods tolerate the real
    node's taint and run there."""
    for ns, project in namespaces.items():
        labels = {PROJECT_LABEL: project} if project else {}
        meta: dict[str, Any] = {"name": ns, "labels": labels}
        if on_node:
            meta["annotations"] = TOLERATE_NODE
        kube.create("namespaces", {"metadata": meta})


@pytest.fixture(scope="session")
def runnable(node: Node, token_registry: TokenRegistry) -> str:  # noqa: F811
    """RUNNABLE pushed to the token registry, whose host the node trusts."""
    node.trust(token_registry.host, token_registry.ca_file)
    pushed = token_registry.skopeo(
        "copy",
        "--quiet",
        *token_registry.tls_args("dest-"),
        "--dest-creds",
        token_registry.seeder.creds,
        f"oci:{node.busybox}:v1",
        f"docker://{token_registry.ref(RUNNABLE)}",
    )
    assert pushed.returncode == 0, pushed.describe()
    return token_registry.ref(RUNNABLE)


def pulls_by_the_node(registry: TokenRegistry, since: int) -> list[tuple[str | None, int]]:
    """(user, status) of the token requests containerd made for the node since request
    number `since`: the credentials the kubelet gave it, in the order it tried them. (Each
    try begins with an OAuth POST naming containerd; a refused one is tried again by GET.)"""
    return [
        (r.username, r.status)
        for r in registry.token_server.requests[since:]
        if r.method == "POST" and r.params.get("client_id") == ("containerd-client",)
    ]


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
    real_kube: RealCluster,
    node: Node,
    runnable: str,
    tmp_path: Path,
) -> Cluster:
    """Cluster c1 on the real API server, whose pods in shop and cart run on the real node.
    shop (project web) is reached, for the registry, by a namespace credential with a wrong
    password, web's project credential (alice) and a cluster-wide one (bob, who may not pull
    team-a/*), in that kubelet order; plus a namespace credential of shop for quay.io and one
    of cart (project store) for the registry, which a Deployment in shop must not get. No
    image is on the node yet: every pull asks the registry."""
    trust(env.data, token_registry)
    node.forget_images()
    make_namespaces(real_kube, {"shop": "web", "cart": "store"}, on_node=True)
    return _registered(env, real_kube, node, token_registry, tmp_path)


def _registered(
    env: Env,  # noqa: F811
    kube: RealCluster,
    node: Node | None,
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
    return Cluster(env, kube, node, token_registry, creds)
