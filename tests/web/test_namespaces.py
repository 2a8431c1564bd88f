"""Namespaces from the live cluster in the web forms and on the project page, with a real
`pullkeeper serve`, real Chromium and the real Kubernetes API server.

Cluster prod of the site is the real API server; namespaces each test makes there go again
after it (`real_kube`). The store also knows namespaces the cluster does not have (a-web,
a-api, b-web from the site's set-up). Cluster gone has an API server nobody answers at.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.kube.real import ControlPlane, RealCluster
from tests.web.conftest import Site, log_in, open_site, screenshot, violations

pytestmark = pytest.mark.integration

GINA = ("gina", "gina-member-pw-5")  # owner of gone-team, in the unreachable cluster


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


def _dead_kubeconfig(path: Path, server: str = "https://127.0.0.1:9") -> str:
    """A kubeconfig whose API server is a port nothing listens on (or `server`)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "current-context": "gone",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[Site]:
    from tests.web.conftest import _require_browser

    _require_browser()
    base = tmp_path_factory.mktemp("web-namespaces")
    with open_site(base) as s:
        api = s.api
        kubeconfig = str(control_plane.kubeconfig(base / "prod.kubeconfig"))
        _ok(api.patch("/clusters/prod", json={"kubeconfig": kubeconfig}))
        _ok(api.post("/clusters", json={"name": "gone"}))
        _ok(api.patch("/clusters/gone", json={"kubeconfig": _dead_kubeconfig(base / "gone.kc")}))
        gone = _ok(api.post("/projects", json={"name": "gone-team", "cluster": "gone"}))
        s.projects["gone-team"] = gone["id"]
        _ok(api.put("/clusters/gone/namespaces/g-ns", json={"project": gone["id"]}))
        _ok(api.post("/users", json={"username": GINA[0], "password": GINA[1]}))
        _ok(api.put(f"/projects/{gone['id']}/members/{GINA[0]}", json={"role": "owner"}))
        # An API server that takes the connection and never answers.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            url = f"https://127.0.0.1:{silent.getsockname()[1]}"
            _ok(api.post("/clusters", json={"name": "silent"}))
            kubeconfig = _dead_kubeconfig(base / "silent.kc", url)
            _ok(api.patch("/clusters/silent", json={"kubeconfig": kubeconfig}))
            yield s


def _token(site: Site, user: str, password: str) -> str:
    r = httpx.post(
        site.url + "/api/v1/login",
        json={"username": user, "password": password},
        trust_env=False,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def _live(
    site: Site, cluster: str, token: str | None = None, project: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"live": "true"} | ({"project": project} if project else {})
    r = site.api.get(f"/clusters/{cluster}/namespaces", params=params, headers=headers)
    return _ok(r)


def _namespace(kube: RealCluster, name: str, labels: dict[str, str]) -> None:
    kube.create("namespaces", {"metadata": {"name": name, "labels": labels}})


def _put(site: Site, name: str, project: str, cluster: str = "prod") -> None:
    body = {"project": site.projects[project]}
    _ok(site.api.put(f"/clusters/{cluster}/namespaces/{name}", json=body))


def _options(page: Any) -> dict[str, str]:
    """The picker's choices: namespace -> what the option says beside it."""
    found: dict[str, str] = page.locator("#namespace-options option").evaluate_all(
        "os => Object.fromEntries(os.map(o => [o.value, o.label]))"
    )
    return found


def _audit(site: Site, action: str) -> list[dict[str, Any]]:
    r = site.api.get("/audit", params={"action": action, "limit": 1000})
    items: list[dict[str, Any]] = _ok(r)["items"]
    return items


def test_the_picker_offers_the_cluster_s_namespaces_as_they_are_now(
    page: Any, site: Site, real_kube: RealCluster
) -> None:
    _namespace(real_kube, "lv-one", {"team": "blue"})
    _namespace(real_kube, "lv-free", {"tier": "batch"})
    _put(site, "lv-one", "team-a")
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/credentials/new?provider=custom")
    # Two clusters and more: nothing chosen, so every project, by cluster, and no namespaces.
    groups = page.locator("#project optgroup")
    expect()(groups).to_have_count(3)
    assert [g.get_attribute("label") for g in groups.all()] == ["gone", "prod", "staging"]
    assert _options(page) == {}

    page.select_option("#cluster", "prod")
    # htmx fetched the fields again for prod: its projects only, its namespaces now.
    expect()(page.locator("#project option")).to_have_text(["Choose a project", "team-a", "team-b"])
    expect()(page.locator("#namespace-options option[value=lv-one]")).to_have_count(1)
    options = _options(page)
    assert options["lv-one"] == "team-a"
    assert options["lv-free"] == "in no project"
    assert options["kube-system"] == "in no project"
    assert options["a-web"] == "team-a, not in the cluster yet"
    assert "g-ns" not in options and "c-web" not in options
    expect()(page.locator("#cluster")).to_have_value("prod")
    expect()(page.locator("#namespace-note")).to_have_text(
        "Pick one of the namespaces of prod or type its name."
    )
    page.get_by_label("Namespace", exact=True).click()
    screenshot(page, "namespace-picker", full_page=False)

    # The REST API answers the same, with the labels.
    items = {n["name"]: n for n in _live(site, "prod")["items"]}
    assert items["lv-one"]["labels"]["team"] == "blue"
    assert items["lv-one"]["project"] == "team-a" and items["lv-one"]["in_cluster"] is True
    assert items["a-web"]["in_cluster"] is False and items["a-web"]["labels"] == {}
    # Without live, the endpoint answers as before: the store's namespaces only.
    stored = _ok(site.api.get("/clusters/prod/namespaces"))["items"]
    assert {"a-web", "lv-one"} <= {n["name"] for n in stored}
    assert all("in_cluster" not in n for n in stored)


def test_the_project_page_lists_its_namespaces_with_their_labels(
    page: Any, site: Site, real_kube: RealCluster
) -> None:
    _namespace(real_kube, "lv-labelled", {"team": "green", "app.kubernetes.io/part-of": "shop"})
    _namespace(real_kube, "lv-elsewhere", {"team": "red"})
    _put(site, "lv-labelled", "team-a")
    _put(site, "lv-elsewhere", "team-b")
    log_in(page, site, "alice")
    page.goto(f"{site.url}/projects/{site.projects['team-a']}")
    rows = page.locator("#namespaces tbody tr")
    names = rows.locator('[data-label="Namespace"] code')
    expect()(names).to_contain_text(["a-api", "a-web", "lv-labelled"])
    assert "lv-elsewhere" not in names.all_text_contents()
    labelled = rows.filter(has=page.locator("code", has_text="lv-labelled"))
    expect()(labelled.locator('[data-label="Labels in the cluster"] li')).to_contain_text(
        ["app.kubernetes.io/part-of=shop", "team=green"]
    )
    a_web = rows.filter(has_text="a-web")
    expect()(a_web).to_contain_text("not in the cluster yet")
    expect()(a_web.locator('[data-label="Labels in the cluster"]')).to_have_text("none")
    screenshot(page, "project-namespaces")
    # The API narrows the live list to a project the same way.
    found = _live(site, "prod", project=site.projects["team-a"])
    in_project = {n["name"]: n for n in found["items"]}
    assert {"a-api", "a-web", "lv-labelled"} <= set(in_project)
    assert "lv-elsewhere" not in in_project and "default" not in in_project
    assert in_project["lv-labelled"]["labels"]["team"] == "green"
    # An owner who is no admin adds no namespace.
    expect()(page.locator("#namespace-form")).to_have_count(0)


def test_a_member_sees_only_their_projects_namespaces(
    page: Any, site: Site, real_kube: RealCluster
) -> None:
    _namespace(real_kube, "lv-mine", {})
    _namespace(real_kube, "lv-theirs", {})
    _put(site, "lv-mine", "team-a")
    _put(site, "lv-theirs", "team-b")
    log_in(page, site, "bob")  # member of team-a
    page.goto(site.url + "/workloads/new")
    expect()(page.locator("#namespace-options option[value=lv-mine]")).to_have_count(1)
    seen = set(_options(page))
    assert {"lv-mine", "a-web", "a-api"} <= seen
    assert not seen & {"lv-theirs", "b-web", "default", "kube-system"}, seen
    # The Pull check's namespace is the same picker.
    page.goto(site.url + "/checks")
    expect()(page.locator("#namespace-options option[value=lv-mine]")).to_have_count(1)
    assert "lv-theirs" not in _options(page)

    token = _token(site, "carol", "carol-member-pw-3")  # member of team-b
    names = {n["name"] for n in _live(site, "prod", token)["items"]}
    assert {"lv-theirs", "b-web"} <= names
    assert not names & {"lv-mine", "a-web", "default"}, names


def test_an_unreachable_cluster_falls_back_to_what_the_store_knows(page: Any, site: Site) -> None:
    found = _live(site, "gone", _token(site, *GINA))
    assert found["live"] is False
    assert [(n["name"], n["in_cluster"]) for n in found["items"]] == [("g-ns", None)]
    assert "could not be reached" in found["note"]
    assert "kubeconfig" not in found["note"] and "/" not in found["note"]
    # An admin is told why, to fix it.
    assert "cannot reach the API server" in _live(site, "gone")["note"]
    # A cluster that never answers is not waited for beyond the picker's short timeout.
    silent = _live(site, "silent")
    assert silent["live"] is False and "did not answer in time" in silent["note"], silent

    log_in(page, site, *GINA)
    page.goto(site.url + "/credentials/new?provider=custom")
    expect()(page.locator("#cluster")).to_have_value("gone")  # her only cluster
    note = page.locator("#namespace-note")
    expect()(note).to_contain_text("Cluster gone could not be reached just now")
    assert "/" not in note.inner_text()
    assert _options(page) == {"g-ns": "gone-team"}
    page.goto(f"{site.url}/projects/{site.projects['gone-team']}")
    expect()(page.locator("#namespaces-note")).to_contain_text("could not be reached")
    g_ns = page.locator("#namespaces tbody tr").filter(has_text="g-ns")
    expect()(g_ns.locator('[data-label="Labels in the cluster"]')).to_have_text("unknown")


def test_an_admin_adds_and_moves_namespaces_on_the_project_page(
    page: Any, site: Site, real_kube: RealCluster
) -> None:
    _namespace(real_kube, "lv-move", {"team": "orange"})
    _put(site, "lv-move", "team-b")
    team_a = site.projects["team-a"]
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(f"{site.url}/projects/{team_a}")
    form = page.locator("#namespace-form")
    # The picker offers the cluster's namespaces, each with the project it is in now.
    assert _options(page)["lv-move"] == "team-b"

    form.get_by_role("button", name="Add namespace").click()
    expect()(page.locator("#namespace-error")).to_have_text(
        "pick or type the name of the namespace to add"
    )
    form.get_by_label("Namespace").fill("Not_A_Name")
    form.get_by_role("button", name="Add namespace").click()
    expect()(page.locator("#namespace-error")).to_contain_text("Not_A_Name")

    # Moved from team-b, labels and all.
    form.get_by_label("Namespace").fill("lv-move")
    form.get_by_role("button", name="Add namespace").click()
    page.wait_for_url(f"{site.url}/projects/{team_a}?added=lv-move")
    expect()(page.get_by_role("status").first).to_have_text("Namespace lv-move is now in team-a.")
    row = page.locator("#namespaces tbody tr").filter(has_text="lv-move")
    expect()(row).to_contain_text("team=orange")
    screenshot(page, "project-namespace-added")
    moved = [
        e for e in _audit(site, "namespace.put") if (e["after"] or {}).get("name") == "lv-move"
    ]
    assert moved[0]["before"] == {"project_id": site.projects["team-b"]}
    assert moved[0]["after"]["project_id"] == team_a and moved[0]["actor"] == "admin"

    # A namespace the cluster does not have yet: typed, it is added all the same.
    form = page.locator("#namespace-form")
    form.get_by_label("Namespace").fill("lv-later")
    form.get_by_role("button", name="Add namespace").click()
    page.wait_for_url(f"{site.url}/projects/{team_a}?added=lv-later")
    later = page.locator("#namespaces tbody tr").filter(has_text="lv-later")
    expect()(later).to_contain_text("not in the cluster yet")
    assert any((e["after"] or {}).get("name") == "lv-later" for e in _audit(site, "namespace.put"))

    # Its owner then delivers a registry there, typing the name.
    page.context.clear_cookies()
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials/new?provider=custom")
    page.get_by_label("Name", exact=True).fill("later-registry")
    page.get_by_label("One namespace").check()
    page.get_by_label("Namespace", exact=True).fill("lv-nowhere")
    page.get_by_label("Registry address").fill("later.example.com")
    page.get_by_label("User name").fill("robot")
    page.get_by_label("Password or token").fill("later-s3cret")
    page.get_by_role("button", name="Save registry").click()
    # A name nobody put in a project is refused, saying what to do.
    expect()(page.locator("#namespace-error")).to_contain_text(
        "namespace 'lv-nowhere' is not known in cluster 'prod': an admin puts it in a project"
    )
    page.get_by_label("Namespace", exact=True).fill("lv-later")
    page.get_by_label("Password or token").fill("later-s3cret")
    page.get_by_role("button", name="Save registry").click()
    expect()(page.get_by_role("heading", level=1)).to_contain_text("later-registry")
    saved = site.credentials("later-registry")[0]
    assert (saved["scope"], saved["namespace"]) == ("namespace", "lv-later")


def test_a_non_admin_cannot_add_a_namespace(page: Any, site: Site) -> None:
    team_a = site.projects["team-a"]
    log_in(page, site, "alice")  # team-a's owner
    page.goto(f"{site.url}/projects/{team_a}")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.request.post(
        f"{site.url}/projects/{team_a}/namespaces", form={"csrf": csrf, "namespace": "sneaky"}
    )
    assert r.status == 403
    assert "only an admin can add namespaces" in r.text()
    stored = _ok(site.api.get("/clusters/prod/namespaces"))["items"]
    assert "sneaky" not in {n["name"] for n in stored}


@pytest.mark.parametrize("script", [True, False], ids=["with-js", "without-js"])
def test_the_scope_shows_only_the_fields_it_uses(browser: Any, site: Site, script: bool) -> None:
    context = browser.new_context(java_script_enabled=script)
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + "/credentials/new?provider=custom")
        project, namespace = page.locator("#project"), page.locator("#namespace")
        expect()(namespace).to_be_visible()  # One namespace is the first choice
        expect()(project).to_be_hidden()
        page.get_by_label("Every namespace of a project").check()
        expect()(project).to_be_visible()
        expect()(namespace).to_be_hidden()
        page.get_by_label("Every namespace of the cluster").check()
        expect()(project).to_be_hidden()
        expect()(namespace).to_be_hidden()

        # The server says which field the scope needs, and shows it.
        page.get_by_label("Every namespace of a project").check()
        page.get_by_label("Name", exact=True).fill("scope-check")
        page.select_option("#cluster", "prod")
        page.get_by_label("Registry address").fill("scope.example.com")
        page.get_by_label("User name").fill("robot")
        page.get_by_label("Password or token").fill("scope-s3cret")
        page.get_by_role("button", name="Save registry").click()
        error = page.locator("#project-error")
        expect()(error).to_have_text("a project-scoped credential needs a project")
        expect()(project).to_be_visible()
        expect()(project).to_have_attribute("aria-invalid", "true")
        assert site.credentials("scope-check") == []
    finally:
        context.close()


def test_the_scope_fields_by_keyboard_alone(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/credentials/new?provider=custom")
    page.locator("#cluster").focus()
    page.keyboard.press("ArrowDown")
    expect()(page.locator("#project option")).to_have_text(["Choose a project", "gone-team"])
    expect()(page.locator(":focus")).to_have_id("cluster")
    page.keyboard.press("ArrowDown")
    expect()(page.locator("#project option")).to_have_text(["Choose a project", "team-a", "team-b"])
    # The fields came again from the server: the focus stays on the cluster.
    expect()(page.locator(":focus")).to_have_id("cluster")
    expect()(page.locator("#cluster")).to_have_value("prod")
    page.keyboard.press("Tab")
    expect()(page.locator(":focus")).to_have_id("scope-namespace")
    page.keyboard.press("ArrowDown")
    expect()(page.locator(":focus")).to_have_id("scope-project")
    page.keyboard.press("Tab")  # to the project; the namespace field is hidden
    expect()(page.locator(":focus")).to_have_id("project")
    page.keyboard.press("ArrowDown")
    expect()(page.locator("#project option:checked")).to_have_text("team-a")
    page.keyboard.press("Tab")
    expect()(page.locator(":focus")).to_have_id("server")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_live_pages_pass_axe(
    browser: Any, site: Site, real_kube: RealCluster, width: int
) -> None:
    _namespace(real_kube, "lv-axe", {"team": "axe", "a-rather-long-label-key/x": "y" * 60})
    _put(site, "lv-axe", "team-a")
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        found = []
        page.goto(f"{site.url}/projects/{site.projects['team-a']}")
        found += violations(page)
        page.locator("#namespace-form").get_by_role("button", name="Add namespace").click()
        expect()(page.locator("#namespace-error")).to_be_visible()
        found += violations(page)
        page.goto(f"{site.url}/projects/{site.projects['gone-team']}")
        found += violations(page)
        page.goto(site.url + "/credentials/new?provider=custom")
        page.select_option("#cluster", "prod")
        expect()(page.locator("#namespace-options option[value=lv-axe]")).to_have_count(1)
        found += violations(page)
        page.get_by_label("Every namespace of a project").check()
        found += violations(page)
        page.goto(site.url + "/workloads/new")
        page.select_option("#cluster", "gone")
        expect()(page.locator("#namespace-note")).to_contain_text("could not be reached")
        found += violations(page)
        width_ok = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert width_ok
    finally:
        context.close()
    assert found == []
