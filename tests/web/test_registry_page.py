"""A registry's page in a real browser, on a real serve whose sync writes into the real
Kubernetes API server: "delivering…" until the sync reports, the registry that supersedes it
named and linked, its Secret downloaded as YAML equal to the one the sync wrote (owners and
admins only, audited), and the workloads that name its Secret."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube.real import ControlPlane, RealCluster
from tests.web.conftest import Site, _require_browser, log_in, open_site, violations
from tests.workloads.conftest import PROJECT_LABEL, eventually

pytestmark = pytest.mark.integration

PASSWORD = "page-s3cret-Qx7"  # throwaway test secret


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@dataclass
class Setup:
    site: Site
    kube: RealCluster
    team_cred: dict[str, Any]

    @property
    def url(self) -> str:
        return self.site.url


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[Setup]:
    _require_browser()
    base = tmp_path_factory.mktemp("registry-page")
    kube = RealCluster(control_plane)
    kube.settle()
    try:
        for ns, project in (("a-web", "team-a"), ("a-api", "team-a"), ("b-web", "team-b")):
            kube.create(
                "namespaces", {"metadata": {"name": ns, "labels": {PROJECT_LABEL: project}}}
            )
        with open_site(base) as site:
            kubeconfig = str(kube.kubeconfig(base / "kubeconfig"))
            r = site.api.patch("/clusters/prod", json={"kubeconfig": kubeconfig})
            assert r.status_code == 200, r.text
            cred = site.create_credential(
                name="team-pull",
                cluster="prod",
                scope="project",
                project=site.projects["team-a"],
                provider="custom",
                server="registry.page.example:5000",
                username="robot",
                password=PASSWORD,
                email="robot@page.example",
            )
            for ns in ("a-web", "a-api"):
                eventually(
                    lambda ns=ns: kube.get("secrets", "team-pull", ns),
                    timeout=60,
                    what=f"the sync delivers team-pull to {ns}",
                )
            yield Setup(site, kube, cred)
    finally:
        kube.cleanup()


def test_a_new_registry_says_delivering_until_the_sync_reports(page: Any, setup: Setup) -> None:
    # A namespace pullkeeper knows but the cluster has not yet: the sync has nothing to say.
    r = setup.site.api.put(
        "/clusters/prod/namespaces/a-late", json={"project": setup.site.projects["team-a"]}
    )
    assert r.status_code in (200, 201), r.text
    cred = setup.site.create_credential(
        name="late-pull",
        cluster="prod",
        scope="namespace",
        namespace="a-late",
        provider="custom",
        server="late.page.example",
        username="robot",
        password=PASSWORD,
    )
    log_in(page, setup.site, "alice")
    page.goto(f"{setup.url}/credentials?q=late-pull")  # the list says so too
    expect()(page.locator("td[data-label='Sync']")).to_have_text("delivering…")
    page.goto(f"{setup.url}/credentials/{cred['id']}?created=1")
    delivery = page.locator("#delivery")
    expect()(delivery).to_contain_text("delivering…")
    assert "no namespace" not in delivery.inner_text()
    assert violations(page) == []
    # The namespace appears; the section updates by itself, without a reload.
    setup.kube.create(
        "namespaces", {"metadata": {"name": "a-late", "labels": {PROJECT_LABEL: "team-a"}}}
    )
    expect()(delivery.locator("tbody tr")).to_have_count(1, timeout=60_000)
    expect()(delivery.locator("tbody tr")).to_contain_text("a-late")
    expect()(delivery.locator("tbody tr")).to_contain_text("in sync")
    expect()(delivery).not_to_contain_text("delivering…")
    assert setup.kube.get("secrets", "late-pull", "a-late") is not None


def test_an_older_registry_names_and_links_the_one_superseding_it(page: Any, setup: Setup) -> None:
    common = {
        "cluster": "prod",
        "scope": "namespace",
        "namespace": "a-api",
        "provider": "custom",
        "server": "sup.page.example",
        "username": "robot",
        "password": PASSWORD,
    }
    old = setup.site.create_credential(name="sup-old", **common)
    new = setup.site.create_credential(name="sup-new", **common)
    log_in(page, setup.site, "bob")  # a member sees it too
    page.goto(f"{setup.url}/credentials/{old['id']}")
    link = page.locator("dd a", has_text="sup-new")
    expect()(link).to_have_attribute("href", f"/credentials/{new['id']}")
    link.click()
    page.wait_for_url(f"{setup.url}/credentials/{new['id']}")
    expect()(page.locator("h1")).to_contain_text("sup-new")
    expect()(page.get_by_text("Superseded by")).to_have_count(0)


def _delivered(kube: RealCluster, namespace: str) -> dict[str, Any]:
    found = kube.get("secrets", "team-pull", namespace)
    assert found is not None
    meta = found["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "annotations": meta["annotations"],
        },
        "type": found["type"],
        "data": found["data"],
    }


def test_an_owner_downloads_the_secret_the_sync_wrote(
    page: Any, setup: Setup, tmp_path: Path
) -> None:
    cred = setup.team_cred
    log_in(page, setup.site, "alice")
    page.goto(f"{setup.url}/credentials/{cred['id']}")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download as YAML").click()
    download = waiting.value
    assert download.suggested_filename == "team-pull-secret.yaml"
    saved = tmp_path / "team-pull.yaml"
    download.save_as(saved)
    docs = list(yaml.safe_load_all(saved.read_text()))
    # One document per namespace the registry reaches, each what the sync wrote there.
    # (a-late is team-a's too once the first test ran.)
    placed = [d["metadata"]["namespace"] for d in docs]
    assert placed == sorted(placed) and {"a-api", "a-web"} <= set(placed) <= {
        "a-api",
        "a-web",
        "a-late",
    }
    for doc in docs:
        where = doc["metadata"]["namespace"]
        eventually(lambda where=where: setup.kube.get("secrets", "team-pull", where))
        assert doc == _delivered(setup.kube, where)
        assert doc["type"] == "kubernetes.io/dockerconfigjson"
        config = json.loads(base64.b64decode(doc["data"][".dockerconfigjson"]))
        entry = config["auths"]["registry.page.example:5000"]
        assert (entry["username"], entry["password"]) == ("robot", PASSWORD)

    answer = page.request.get(f"{setup.url}/credentials/{cred['id']}/secret.yaml")
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"] == 'attachment; filename="team-pull-secret.yaml"'
    r = setup.site.api.get("/audit", params={"object_type": "credential", "object_id": cred["id"]})
    reads = [e for e in r.json()["items"] if e["action"] == "credential.read_secret"]
    assert [e["actor"] for e in reads] == ["alice", "alice"]
    assert PASSWORD not in r.text

    # The API gives the same file to an admin.
    api = setup.site.api.get(f"/credentials/{cred['id']}/secret.yaml")
    assert api.status_code == 200 and list(yaml.safe_load_all(api.text)) == docs


def test_a_member_neither_sees_the_download_nor_gets_it(page: Any, setup: Setup) -> None:
    cred = setup.team_cred
    log_in(page, setup.site, "bob")
    page.goto(f"{setup.url}/credentials/{cred['id']}")
    expect()(page.locator("h1")).to_contain_text("team-pull")
    expect()(page.get_by_role("link", name="Download as YAML")).to_have_count(0)
    before = setup.site.api.get(
        "/audit", params={"object_type": "credential", "object_id": cred["id"]}
    ).json()["items"]
    answer = page.goto(f"{setup.url}/credentials/{cred['id']}/secret.yaml")
    assert answer is not None and answer.status == 403
    expect()(page.locator("main")).to_contain_text(
        "only an admin or the owner of the registry's project may download its Secret"
    )
    assert PASSWORD not in page.content()
    after = setup.site.api.get(
        "/audit", params={"object_type": "credential", "object_id": cred["id"]}
    ).json()["items"]
    assert len(after) == len(before)  # a refusal reads nothing


def test_used_by_lists_the_workloads_naming_its_secret(page: Any, setup: Setup) -> None:
    def deployment(name: str, secrets: list[str]) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{"name": "app", "image": "registry.page.example:5000/a:1"}],
                        "imagePullSecrets": [{"name": s} for s in secrets],
                    },
                },
            },
        }

    setup.kube.create("deployments", deployment("uses-it", ["team-pull"]), "a-web")
    setup.kube.create("deployments", deployment("other", ["something-else"]), "a-web")
    log_in(page, setup.site, "bob")
    page.goto(f"{setup.url}/credentials/{setup.team_cred['id']}")
    page.get_by_role("link", name="the workloads whose pods name its Secret").click()
    page.wait_for_url("**/workloads?credential=*")
    rows = page.locator("#workloads tbody tr")
    expect()(rows).to_have_count(1)
    expect()(rows).to_contain_text("uses-it")
    expect()(rows).to_contain_text("team-pull")
    # Its pods are not on a node (this cluster has no node for them): said so.
    expect()(rows).to_contain_text("not on a node")
    for width in (1280, 390):  # the list with rows, at desktop and phone width
        page.set_viewport_size({"width": width, "height": 900})
        assert violations(page) == []
    rows.get_by_role("link", name="uses-it").click()
    page.wait_for_url(f"{setup.url}/workloads/prod/a-web/uses-it")

    # The project page leads to its workloads, every one of them; so does the navigation.
    page.goto(f"{setup.url}/projects/{setup.site.projects['team-a']}")
    page.get_by_role("link", name="Its workloads and how their images pull").click()
    every = page.locator("#workloads tbody tr")
    expect()(every).to_have_count(2)
    expect()(every.nth(0)).to_contain_text("other")
    expect()(every.nth(1)).to_contain_text("uses-it")
    expect()(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Workloads")
    ).to_have_attribute("aria-current", "page")
    # A project bob is not in: nothing of it.
    page.goto(f"{setup.url}/workloads?cluster=prod&project={setup.site.projects['team-b']}")
    expect()(page.locator("#results")).to_contain_text("no project")


def test_with_no_namespace_known_the_download_is_one_secret_for_kubectl_apply_n(
    setup: Setup,
) -> None:
    r = setup.site.api.post("/projects", json={"name": "empty", "cluster": "prod"})
    assert r.status_code == 201, r.text
    cred = setup.site.create_credential(
        name="nowhere-pull",
        cluster="prod",
        scope="project",
        project=r.json()["id"],
        provider="custom",
        server="nowhere.page.example",
        username="robot",
        password=PASSWORD,
    )
    answer = setup.site.api.get(f"/credentials/{cred['id']}/secret.yaml")
    assert answer.status_code == 200, answer.text
    [doc] = yaml.safe_load_all(answer.text)
    assert doc["metadata"] == {
        "name": "nowhere-pull",
        "labels": {
            "app.kubernetes.io/managed-by": "pullkeeper",
            "pullkeeper.io/credential": cred["id"],
        },
    }
    assert doc["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(doc["data"][".dockerconfigjson"]))
    assert config["auths"]["nowhere.page.example"]["password"] == PASSWORD
