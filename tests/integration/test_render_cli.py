"""`pullkeeper render` against a real `pullkeeper serve`: manifests for `kubectl apply -f -`."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.conftest import Result, isolated_env, pk
from tests.integration.test_cli_server import ADMIN_TOKEN, Server, start_server
from tests.kube.real import RealCluster

PASSWORDS = {"shop-pull": "shop-pass-Xy7142", "web-pull": "web-pass-Qz9931"}  # test values


@dataclass(frozen=True)
class Setup:
    server: Server
    env: dict[str, str]

    def pk(self, *args: str) -> Result:
        return pk(*args, env=self.env)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("render")
    server = start_server(base)
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as api:
            for method, path, body in (
                ("POST", "/clusters", {"name": "c1"}),
                ("POST", "/projects", {"name": "web", "cluster": "c1"}),
                ("PUT", "/clusters/c1/namespaces/shop", {"project": "web"}),
                ("PUT", "/clusters/c1/namespaces/cart", {"project": "web"}),
                ("PUT", "/clusters/c1/namespaces/tools", {"project": None}),
            ):
                assert api.request(method, path, json=body).status_code < 300
            for name, scope in (
                ("shop-pull", {"scope": "namespace", "namespace": "shop"}),
                ("web-pull", {"scope": "project", "project": "web"}),
            ):
                body = {
                    "name": name,
                    "cluster": "c1",
                    "provider": "quay",
                    "username": "robot",
                    "password": PASSWORDS[name],
                    **scope,
                }
                made = api.post("/credentials", json=body)
                assert made.status_code == 201, made.text
        env = isolated_env(base / "home")
        env.update(PULLKEEPER_SERVER=server.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)
        yield Setup(server, env)
    finally:
        server.stop()


def _password(secret: dict[str, object]) -> str:
    data = secret["data"]
    assert isinstance(data, dict)
    config = json.loads(base64.b64decode(data[".dockerconfigjson"]))
    password: str = config["auths"]["quay.io"]["password"]
    return password


def test_render_prints_yaml_documents_for_kubectl(setup: Setup) -> None:
    result = setup.pk("render")
    assert result.returncode == 0, result.describe()
    docs = list(yaml.safe_load_all(result.stdout))
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs] == [
        ("cart", "web-pull"),
        ("shop", "shop-pull"),
        ("shop", "web-pull"),
    ]
    assert {_password(d) for d in docs} == set(PASSWORDS.values())
    as_json = setup.pk("render", "-n", "shop", "-o", "json")
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == 2


def test_render_out_writes_one_private_file_per_namespace(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "gitops"
    out.mkdir()
    (out / "tools.yaml").write_text("stale: true\n")  # tools gets nothing now
    result = setup.pk("render", "--project", "web", "--out", str(out))
    assert result.returncode == 0, result.describe()
    # tools is not web's: its file is not this render's to touch.
    assert sorted(p.name for p in out.iterdir()) == ["cart.yaml", "shop.yaml", "tools.yaml"]
    shop = list(yaml.safe_load_all((out / "shop.yaml").read_text()))
    assert [d["metadata"]["name"] for d in shop] == ["shop-pull", "web-pull"]
    for path in out.glob("*.yaml"):
        if path.name != "tools.yaml":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    everything = setup.pk("render", "--out", str(out))
    assert everything.returncode == 0, everything.describe()
    # A whole-cluster render owns the directory's namespaces: tools has no Secret, no file.
    assert sorted(p.name for p in out.iterdir()) == ["cart.yaml", "shop.yaml"]


def test_render_refusals(setup: Setup) -> None:
    both = setup.pk("render", "-n", "shop", "--project", "web")
    assert both.returncode == 2 and "exclude each other" in both.stderr
    unknown = setup.pk("render", "--cluster", "nope")
    assert unknown.returncode == 2 and "no cluster 'nope'" in unknown.stderr, unknown.describe()


def test_kubectl_accepts_the_render(setup: Setup, real_kube: RealCluster) -> None:
    """`pullkeeper render | kubectl apply -f -` against the real API server: a server-side dry
    run (the server's own validation), a server-side apply, and again (nothing changes)."""
    rendered = setup.pk("render")
    assert rendered.returncode == 0, rendered.describe()
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    for ns in ("shop", "cart", "tools"):
        real_kube.create("namespaces", {"metadata": {"name": ns}})

    dry = real_kube.apply(docs, "--dry-run=server")
    assert dry.stdout.count("(server dry run)") == len(docs), dry.stdout
    assert real_kube.objects("secrets", "shop") == []
    real_kube.apply(docs, "--server-side", "--field-manager=pullkeeper-render")
    stored = {s["metadata"]["name"]: s for s in real_kube.objects("secrets", "shop")}
    assert sorted(stored) == ["shop-pull", "web-pull"]
    assert stored["shop-pull"]["type"] == "kubernetes.io/dockerconfigjson"
    again = real_kube.apply(docs, "--server-side", "--field-manager=pullkeeper-render")
    assert again.stdout.count("serverside-applied") == len(docs), again.stdout
    after = {s["metadata"]["name"]: s for s in real_kube.objects("secrets", "shop")}
    assert {n: s["metadata"]["resourceVersion"] for n, s in after.items()} == {
        n: s["metadata"]["resourceVersion"] for n, s in stored.items()
    }, "applying the same render again writes nothing"
