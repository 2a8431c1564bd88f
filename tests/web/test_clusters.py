"""The Clusters pages against the real Kubernetes API server: a kubeconfig uploaded through
the page is kept encrypted in the store (no file) and the cluster then syncs, also from
another server on the store; one that would run a command or read files is refused whole;
Test connection reports the server's real version and names exactly the permissions a
restricted account lacks; deleting names what goes; non-admins get nothing."""

from __future__ import annotations

import base64
import html
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from pullkeeper.core.webhook_manifests import Options, manifests
from tests.integration.test_cli_server import ADMIN_TOKEN, start_server
from tests.kube.real import RealCluster
from tests.registry.pki import self_signed_server
from tests.tools import pullkeeper_executable
from tests.web.conftest import PASSWORDS, Site, log_in

pytestmark = pytest.mark.integration
T = TypeVar("T")


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def eventually(check: Callable[[], T], what: str, timeout: float = 90.0) -> T:
    """check()'s first truthy value (a wait for the sync, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}; last: {value!r}")
        time.sleep(0.2)
    return value


def _needed() -> set[str]:
    """Every verb and resource of the ClusterRole `pullkeeper webhook manifests` prints."""
    docs = manifests(Options(ca_bundle="Y2E="))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    return {
        f"{verb} {resource}.{group}" if group else f"{verb} {resource}"
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _token(config: Path) -> str:
    token: str = yaml.safe_load(config.read_text())["users"][0]["user"]["token"]
    return token


def _store_bytes(site: Site) -> bytes:
    """Every byte of the server's SQLite store (its write-ahead log too)."""
    return b"".join(p.read_bytes() for p in site.server.data.glob("pullkeeper.db*"))


def _cluster(site: Site, name: str) -> dict[str, Any] | None:
    r = site.api.get(f"/clusters/{name}")
    return r.json() if r.status_code == 200 else None


def test_upload_a_kubeconfig_test_it_and_the_cluster_syncs(
    page: Any, site: Site, real_kube: RealCluster, tmp_path: Path
) -> None:
    real_kube.create("namespaces", {"metadata": {"name": "clu-web"}})
    config = real_kube.kubeconfig(tmp_path / "upload" / "kind.yaml")
    version = real_kube.call("GET", "/version").json()["gitVersion"]
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Clusters").click()
    page.get_by_role("link", name="Add a cluster").click()
    page.get_by_label("Name", exact=True).fill("kind")
    page.get_by_label("Kubeconfig file").set_input_files(str(config))

    # Tested before saving: the real server's version, and nothing missing (a cluster admin).
    page.get_by_role("button", name="Test connection").click()
    expect()(page.locator("#connection-ok")).to_contain_text(version)
    page.get_by_role("button", name="Save cluster").click()
    page.wait_for_url(site.url + "/clusters/kind?created=1")
    expect()(page.locator(".notice")).to_have_text("Cluster registered.")

    cluster = _cluster(site, "kind")
    assert cluster is not None and cluster["context"] == "test"  # the file's current-context
    # Kept in the store, encrypted: no file, and the token is nowhere in the store's bytes.
    assert (cluster["kubeconfig"], cluster["kubeconfig_uploaded"]) == ("", True)
    assert not (site.server.data / "kubeconfigs").exists()
    assert _token(config).encode() not in _store_bytes(site)
    assert _token(config) not in page.content() and _token(config) not in str(cluster)

    # The sync reaches the cluster: its namespaces become known, a registry for one of them
    # is delivered as a Secret on the real API server, and the page counts it in sync.
    eventually(
        lambda: any(
            n["name"] == "clu-web"
            for n in site.api.get("/clusters/kind/namespaces").json()["items"]
        ),
        "namespace clu-web known",
    )
    site.create_credential(
        name="clu-quay",
        cluster="kind",
        scope="namespace",
        namespace="clu-web",
        provider="quay",
        username="org+bot",
        password="clu-s3cret",
    )
    secret = eventually(lambda: real_kube.get("secrets", "clu-quay", "clu-web"), "Secret made")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    eventually(
        lambda: site.api.get("/clusters/kind/sync").json()["summary"]["in_sync"] == 1,
        "the Secret counted in sync",
    )
    page.reload()
    expect()(page.locator("#sync-state")).to_contain_text("In sync1")
    expect()(page.locator("#sync-error")).to_have_text("none")
    expect()(page.locator("#namespaces")).to_contain_text("clu-web")
    page.goto(site.url + "/clusters")
    expect()(page.locator("#clusters")).to_contain_text("1 in sync")

    # Test connection on the detail page: the same answer, for the saved cluster.
    page.goto(site.url + "/clusters/kind")
    page.get_by_role("button", name="Test connection").click()
    expect()(page.locator("#connection-ok")).to_contain_text(version)
    expect()(page.locator("#connection-ok")).to_contain_text("every permission it needs")

    # Delete: the confirmation counts what goes; the uploaded file goes with the cluster.
    page.get_by_role("link", name="Delete").click()
    goes = page.locator("#what-goes")
    expect()(goes).to_contain_text("0 projects")
    expect()(goes).to_contain_text("1 registry delivered to it")
    expect()(goes).to_contain_text("the kubeconfig uploaded for it")
    expect()(goes).to_contain_text("namespace")
    page.get_by_role("button", name="Delete kind").click()
    page.wait_for_url(site.url + "/clusters?deleted=kind")
    assert _cluster(site, "kind") is None
    assert site.credentials("clu-quay") == []
    # Nothing in the cluster is touched: the delivered Secret stays (as the page said).
    assert real_kube.get("secrets", "clu-quay", "clu-web") is not None


def _restricted_kubeconfig(real_kube: RealCluster, path: Path) -> Path:
    """A ServiceAccount that may only read namespaces and get/list Secrets."""
    real_kube.create("namespaces", {"metadata": {"name": "clu-sa"}})
    real_kube.create("serviceaccounts", {"metadata": {"name": "narrow"}}, "clu-sa")
    applied = real_kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "clu-narrow"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["namespaces"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "clu-narrow"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "clu-narrow",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": "clu-sa"}],
            },
        ]
    )
    assert applied.returncode == 0, applied.stderr
    issued = real_kube.call(
        "POST",
        "/api/v1/namespaces/clu-sa/serviceaccounts/narrow/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert issued.status_code == 201, issued.text
    return real_kube.kubeconfig(path, issued.json()["status"]["token"])


def test_a_restricted_account_s_missing_permissions_are_named(
    page: Any, site: Site, real_kube: RealCluster, tmp_path: Path
) -> None:
    config = _restricted_kubeconfig(real_kube, tmp_path / "narrow.yaml")
    granted = {"get namespaces", "list namespaces", "watch namespaces"}
    granted |= {"get secrets", "list secrets"}
    missing = _needed() - granted
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/clusters/new")
    page.get_by_label("Name", exact=True).fill("narrow")
    # Pasted this time, not uploaded.
    page.get_by_label("Or paste the kubeconfig").fill(config.read_text())
    page.get_by_role("button", name="Test connection").click()
    shown = page.locator("#connection-missing li")
    expect()(shown).to_have_count(len(missing))
    assert set(shown.all_inner_texts()) == missing
    assert _token(config) not in page.content()
    page.get_by_role("button", name="Save cluster").click()
    page.wait_for_url(site.url + "/clusters/narrow?created=1")

    # The REST API and the CLI answer the same.
    answer = site.api.post("/clusters/narrow/test")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["reachable"] and set(body["missing"]) == missing
    assert body["version"] == real_kube.call("GET", "/version").json()["gitVersion"]
    cli = subprocess.run(
        [pullkeeper_executable(), "cluster", "test", "narrow"],
        capture_output=True,
        text=True,
        env={"PULLKEEPER_SERVER": site.url, "PULLKEEPER_TOKEN": ADMIN_TOKEN, "HOME": str(tmp_path)},
        check=False,
    )
    assert cli.returncode == 1, cli.stderr
    for permission in missing:
        assert f"  {permission}\n" in cli.stdout
    assert body["version"] in cli.stdout
    assert site.api.delete("/clusters/narrow").status_code == 204


def test_bad_kubeconfigs_are_refused_in_words(page: Any, site: Site, tmp_path: Path) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/clusters/new")
    page.get_by_label("Name", exact=True).fill("broken")
    page.get_by_label("Or paste the kubeconfig").fill("clusters: [\n  token: s3cret-in-the-file")
    page.get_by_role("button", name="Save cluster").click()
    error = page.locator("#kubeconfig-error")
    expect()(error).to_contain_text("not a usable kubeconfig: the file is not YAML")
    assert "s3cret-in-the-file" not in page.content()

    no_contexts = tmp_path / "empty.yaml"
    no_contexts.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n")
    page.get_by_label("Kubeconfig file").set_input_files(str(no_contexts))
    page.get_by_role("button", name="Save cluster").click()
    expect()(error).to_contain_text("the kubeconfig has no contexts")
    assert _cluster(site, "broken") is None


def _with_exec(real_kube: RealCluster, tmp_path: Path, marker: Path) -> Path:
    """A working kubeconfig with another user, of another context, whose `exec` would create
    `marker` on the machine that used it."""
    config = real_kube.kubeconfig(tmp_path / "exec.yaml")
    doc = yaml.safe_load(config.read_text())
    command = {"apiVersion": "client.authentication.k8s.io/v1", "command": "/usr/bin/touch"}
    command["args"] = [str(marker)]  # type: ignore[assignment]
    doc["users"].append({"name": "runs", "user": {"exec": command}})
    doc["contexts"].append({"name": "later", "context": {"cluster": "test", "user": "runs"}})
    config.write_text(yaml.safe_dump(doc))
    return config


def test_a_kubeconfig_that_would_run_a_command_is_refused_and_nothing_runs(
    page: Any, site: Site, real_kube: RealCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "exec-ran"
    config = _with_exec(real_kube, tmp_path, marker)
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/clusters/new")
    page.get_by_label("Name", exact=True).fill("runs")
    page.get_by_label("Kubeconfig file").set_input_files(str(config))
    page.get_by_role("button", name="Test connection").click()
    expect()(page.locator("main")).to_contain_text(
        "Not tested: the kubeconfig cannot be used by the server: user 'runs' has exec"
    )
    error = page.locator("#kubeconfig-error")
    page.get_by_label("Kubeconfig file").set_input_files(str(config))
    page.get_by_role("button", name="Save cluster").click()
    expect()(error).to_contain_text("user 'runs' has exec (runs a command)")
    assert _cluster(site, "runs") is None
    # Nor through the API, with the context of the user that does not run anything.
    refused = site.api.put(
        "/clusters/staging/kubeconfig", json={"content": config.read_text(), "context": "test"}
    )
    assert refused.status_code == 422, refused.text
    assert "user 'runs' has exec (runs a command)" in refused.json()["error"]["message"]
    assert site.api.get("/clusters/staging").json()["kubeconfig_uploaded"] is False
    assert not marker.exists()


def test_a_cluster_or_project_cannot_be_named_new(site: Site) -> None:
    made = site.api.post("/clusters", json={"name": "new"})
    assert made.status_code == 422, made.text
    assert "/clusters/new is the web's Add form" in made.json()["error"]["message"]
    renamed = site.api.patch("/clusters/staging", json={"name": "new"})
    assert renamed.status_code == 422, renamed.text
    project = site.api.post("/projects", json={"name": "new", "cluster": "prod"})
    assert project.status_code == 422, project.text
    assert "/projects/new is the web's Add form" in project.json()["error"]["message"]


def test_the_clusters_pages_are_for_admins(page: Any, site: Site) -> None:
    log_in(page, site, "alice")
    expect()(page.get_by_role("link", name="Clusters")).to_have_count(0)
    for path in ("/clusters", "/clusters/new", "/clusters/prod", "/clusters/prod/delete"):
        page.goto(site.url + path)
        expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    answer = page.request.post(site.url + "/clusters/prod/delete", form={"csrf": "x"})
    assert answer.status == 403
    assert _cluster(site, "prod") is not None


def test_add_an_in_cluster_cluster_by_keyboard_alone(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/clusters/new")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("inside")
    page.keyboard.press("Tab")  # description
    page.keyboard.press("Tab")  # the access radio group
    expect()(page.locator(":focus")).to_have_id("access-kubeconfig")
    page.keyboard.press("ArrowDown")
    expect()(page.locator(":focus")).to_have_id("access-in-cluster")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Enter in a text field saves
    page.wait_for_url(site.url + "/clusters/inside?created=1")
    cluster = _cluster(site, "inside")
    assert cluster is not None
    assert (cluster["access"], cluster["kubeconfig"]) == ("in-cluster", "")
    # Outside a pod the sync says, in words, what it lacks.
    error = eventually(
        lambda: site.api.get("/clusters/inside/sync").json()["error"], "a sync error"
    )
    page.goto(site.url + "/clusters/inside")
    expect()(page.locator("#sync-error")).to_have_text(error)
    assert site.api.delete("/clusters/inside").status_code == 204


def test_only_the_chosen_context_is_kept_and_edit_replaces_it(
    page: Any, site: Site, real_kube: RealCluster, tmp_path: Path
) -> None:
    config = real_kube.kubeconfig(tmp_path / "two.yaml")
    doc = yaml.safe_load(config.read_text())
    doc["users"].append({"name": "second", "user": {"token": "second-user-s3cret"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "test", "user": "second"}})
    config.write_text(yaml.safe_dump(doc))
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/clusters/new")
    page.get_by_label("Name", exact=True).fill("twoctx")
    page.get_by_label("Kubeconfig file").set_input_files(str(config))
    page.get_by_label("Context", exact=True).fill("test")
    page.get_by_role("button", name="Save cluster").click()
    page.wait_for_url(site.url + "/clusters/twoctx?created=1")
    expect()(page.locator("#context-now")).to_have_text("test")
    # Only that context is kept: no other to switch to, from the page or the API.
    expect()(page.get_by_label("Context of the kubeconfig")).to_have_count(0)
    answer = page.request.post(
        site.url + "/clusters/twoctx/context",
        form={"csrf": page.locator("input[name=csrf]").first.input_value(), "context": "other"},
    )
    assert answer.status == 422
    assert "holds only context 'test'" in html.unescape(answer.text())
    patched = site.api.patch("/clusters/twoctx", json={"context": "other"})
    assert patched.status_code == 422, patched.text
    assert "upload the kubeconfig again" in patched.json()["error"]["message"]
    cluster = _cluster(site, "twoctx")
    assert cluster is not None and cluster["context"] == "test"

    # Edit: the description alone keeps the kubeconfig and its context.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Description").fill("two contexts once")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(site.url + "/clusters/twoctx?saved=1")
    expect()(page.locator("#context-now")).to_have_text("test")
    assert _cluster(site, "twoctx")["kubeconfig_uploaded"] is True  # type: ignore[index]

    # Edit with a new file, another context of it chosen: kept instead.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Kubeconfig file").set_input_files(str(config))
    page.get_by_label("Context", exact=True).fill("other")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(site.url + "/clusters/twoctx?saved=1")
    expect()(page.locator("#context-now")).to_have_text("other")
    events = site.api.get("/audit", params={"object_id": cluster["id"]}).json()["items"]
    assert {"cluster.create", "cluster.update"} <= {e["action"] for e in events}
    assert _token(config) not in str(events) and "second-user-s3cret" not in str(events)

    # In-cluster from now on: the uploaded kubeconfig goes.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("In-cluster").check()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(site.url + "/clusters/twoctx?saved=1")
    assert _cluster(site, "twoctx")["kubeconfig_uploaded"] is False  # type: ignore[index]
    assert site.api.delete("/clusters/twoctx").status_code == 204


def test_editing_a_cluster_on_its_file_s_current_context_keeps_that_context(
    page: Any, site: Site, real_kube: RealCluster, tmp_path: Path
) -> None:
    config = real_kube.kubeconfig(tmp_path / "mine" / "current.yaml")
    doc = yaml.safe_load(config.read_text())
    first = {"name": "first", "context": {"cluster": "test", "user": doc["users"][0]["name"]}}
    doc["contexts"].insert(0, first)  # current-context stays "test", second in the file
    config.write_text(yaml.safe_dump(doc))
    made = site.api.post("/clusters", json={"name": "current", "kubeconfig": str(config)})
    assert made.status_code == 201, made.text
    assert made.json()["context"] == ""
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/clusters/current/edit")
    expect()(page.get_by_label("Context", exact=True)).to_have_value("test")
    page.get_by_label("Description").fill("described")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(site.url + "/clusters/current?saved=1")
    cluster = _cluster(site, "current")
    assert cluster is not None and cluster["description"] == "described"
    assert cluster["context"] == "test"  # the file's current-context, not its first one
    assert site.api.delete("/clusters/current").status_code == 204


def test_a_member_never_sees_the_server_s_paths(
    page: Any, site: Site, browser: Any, tmp_path: Path
) -> None:
    hidden = tmp_path / "secret-place" / "prod.yaml"
    r = site.api.patch("/clusters/prod", json={"kubeconfig": str(hidden)})
    assert r.status_code == 200, r.text
    try:
        cred = site.create_credential(
            name="clu-paths",
            cluster="prod",
            scope="project",
            project=site.projects["team-a"],
            provider="quay",
            username="org+paths",
            password="paths-s3cret",
        )
        admin_view = eventually(
            lambda: str(hidden) in site.api.get("/clusters/prod/sync").json()["error"],
            "the sync error naming the missing file",
        )
        assert admin_view
        log_in(page, site, "bob")
        page.goto(site.url + f"/credentials/{cred['id']}")
        expect()(page.locator("main")).to_contain_text("(a file on the server) does not exist")
        assert "secret-place" not in page.content()
        bob = httpx.post(
            site.url + "/api/v1/login", json={"username": "bob", "password": PASSWORDS["bob"]}
        ).json()["token"]
        status = httpx.get(
            site.url + f"/api/v1/credentials/{cred['id']}/status",
            headers={"Authorization": f"Bearer {bob}"},
        )
        assert status.status_code == 200, status.text
        assert "secret-place" not in status.text and "does not exist" in status.text
        site.api.delete(f"/credentials/{cred['id']}")
    finally:
        assert site.api.patch("/clusters/prod", json={"kubeconfig": ""}).status_code == 200


def test_the_api_keeps_a_kubeconfig_and_says_why_it_cannot_connect(
    site: Site, real_kube: RealCluster, tmp_path: Path
) -> None:
    made = site.api.post("/clusters", json={"name": "by-api"})
    assert made.status_code == 201, made.text
    config = real_kube.kubeconfig(tmp_path / "bad.yaml", token="not-a-token-the-server-knows")
    sent = subprocess.run(
        [pullkeeper_executable(), "cluster", "kubeconfig", "by-api", str(config)],
        capture_output=True,
        text=True,
        env={"PULLKEEPER_SERVER": site.url, "PULLKEEPER_TOKEN": ADMIN_TOKEN, "HOME": str(tmp_path)},
        check=False,
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == "cluster by-api now uses the uploaded kubeconfig, context test\n"
    r = site.api.get("/clusters/by-api")
    assert (r.json()["kubeconfig"], r.json()["kubeconfig_uploaded"]) == ("", True)
    assert r.json()["context"] == "test" and "not-a-token" not in r.text
    assert b"not-a-token" not in _store_bytes(site)
    tested = site.api.post("/clusters/by-api/test").json()
    assert tested["reachable"] is False and tested["missing"] == []
    assert "the cluster refused pullkeeper's credentials" in tested["error"]
    assert "not-a-token" not in str(tested)

    refused = site.api.put(
        "/clusters/by-api/kubeconfig", json={"content": config.read_text(), "context": "nope"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == (
        "the kubeconfig has no context 'nope'; it has test"
    )
    # No answer, and a certificate the kubeconfig's CA did not sign: said in words too.
    doc = yaml.safe_load(config.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed}"
    put = site.api.put("/clusters/by-api/kubeconfig", json={"content": yaml.safe_dump(doc)})
    assert put.status_code == 200, put.text
    tested = site.api.post("/clusters/by-api/test").json()
    assert tested["reachable"] is False
    assert "check the kubeconfig's server address, and that the API server runs" in tested["error"]
    other_ca = self_signed_server(tmp_path / "other-ca").cert_file.read_bytes()
    doc = yaml.safe_load(config.read_text())
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        other_ca
    ).decode()
    put = site.api.put("/clusters/by-api/kubeconfig", json={"content": yaml.safe_dump(doc)})
    assert put.status_code == 200, put.text
    tested = site.api.post("/clusters/by-api/test").json()
    assert tested["reachable"] is False
    assert (
        "its certificate is not signed by the kubeconfig's certificate-authority"
        in (tested["error"])
    )
    # Certificate data that is no base64 of PEM is refused at upload; PEM armour around no
    # certificate is found when the client is made: said in words, not a server error.
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = "bm90IGEgY2VydA=="
    refused = site.api.put("/clusters/by-api/kubeconfig", json={"content": yaml.safe_dump(doc)})
    assert refused.status_code == 422, refused.text
    assert (
        "cluster 'test' has a certificate-authority-data that is not base64 of PEM data"
        in (refused.json()["error"]["message"])
    )
    armour = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(armour).decode()
    put = site.api.put("/clusters/by-api/kubeconfig", json={"content": yaml.safe_dump(doc)})
    assert put.status_code == 200, put.text
    tested = site.api.post("/clusters/by-api/test")
    assert tested.status_code == 200, tested.text
    assert tested.json()["reachable"] is False
    assert "certificate-authority-data" in tested.json()["error"]
    assert "is not a PEM certificate or key" in tested.json()["error"]
    # A kubeconfig naming files of the machine it was written on cannot work on the server.
    doc["users"][0]["user"] = {"client-certificate": "me.crt", "client-key": "me.key"}
    refused = site.api.put("/clusters/by-api/kubeconfig", json={"content": yaml.safe_dump(doc)})
    assert refused.status_code == 422
    assert (
        "user 'pullkeeper' has client-certificate (names a file); "
        "user 'pullkeeper' has client-key (names a file)"
    ) in refused.json()["error"]["message"]

    # A path of the admin's own instead: the uploaded kubeconfig goes.
    r = site.api.patch("/clusters/by-api", json={"kubeconfig": str(config)})
    assert r.status_code == 200, r.text
    assert (r.json()["kubeconfig"], r.json()["kubeconfig_uploaded"]) == (str(config), False)
    assert site.api.delete("/clusters/by-api").status_code == 204


def test_a_member_gets_no_kubeconfig_path_from_the_api(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "hidden-dir" / "prod.yaml"
    assert site.api.patch("/clusters/prod", json={"kubeconfig": str(path)}).status_code == 200
    try:
        login = {"username": "bob", "password": PASSWORDS["bob"]}
        bob = httpx.post(site.url + "/api/v1/login", json=login).json()["token"]
        headers = {"Authorization": f"Bearer {bob}"}
        listed = httpx.get(site.url + "/api/v1/clusters", headers=headers).json()["items"]
        shown = httpx.get(site.url + "/api/v1/clusters/prod", headers=headers).json()
        assert [c["kubeconfig"] for c in listed] == ["(a file on the server)"]
        assert shown["kubeconfig"] == "(a file on the server)"
        assert site.api.get("/clusters/prod").json()["kubeconfig"] == str(path)
    finally:
        assert site.api.patch("/clusters/prod", json={"kubeconfig": ""}).status_code == 200


def test_another_server_on_the_store_syncs_with_the_uploaded_kubeconfig(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    """Replicas have data directories of their own: one that never saw the upload reads it
    from the store (with the shared keys) and syncs the cluster."""
    real_kube.create("namespaces", {"metadata": {"name": "clu-replica"}})
    config = real_kube.kubeconfig(tmp_path / "replica.yaml")
    shared = {
        "PULLKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "PULLKEEPER_KEYS_DIR": str(tmp_path / "shared-keys"),
    }
    first = start_server(tmp_path / "first", settings=shared)
    try:
        api = httpx.Client(
            base_url=first.url + "/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            trust_env=False,
            timeout=30,
        )
        assert api.post("/clusters", json={"name": "replica"}).status_code == 201
        put = api.put("/clusters/replica/kubeconfig", json={"content": config.read_text()})
        assert put.status_code == 200, put.text
        api.close()
    finally:
        first.stop()
    second = start_server(tmp_path / "second", settings=shared)
    try:
        api = httpx.Client(
            base_url=second.url + "/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            trust_env=False,
            timeout=30,
        )
        eventually(
            lambda: any(
                n["name"] == "clu-replica"
                for n in api.get("/clusters/replica/namespaces").json()["items"]
            ),
            "namespace clu-replica known to the second server",
        )
        made = api.post(
            "/credentials",
            json={
                "name": "clu-replica",
                "cluster": "replica",
                "scope": "namespace",
                "namespace": "clu-replica",
                "provider": "quay",
                "username": "org+bot",
                "password": "replica-s3cret",
            },
        )
        assert made.status_code == 201, made.text
        secret = eventually(
            lambda: real_kube.get("secrets", "clu-replica", "clu-replica"), "Secret made"
        )
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert not (tmp_path / "first" / "data" / "kubeconfigs").exists()
        assert not (tmp_path / "second" / "data" / "kubeconfigs").exists()
        api.close()
    finally:
        second.stop()
