"""The Nodes page in a real browser against a real server: admins add, edit and delete a
cluster's node profiles through the form, errors are shown at their field with the input
kept, an edit made meanwhile is never overwritten, owners read their projects' part only,
members are refused, the forms need their CSRF token, and the nodes' reports are shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pullkeeper.web.registries_yaml import load
from tests.registry import pki
from tests.web.conftest import Console, Site, log_in, screenshot, violations

pytestmark = pytest.mark.integration

PROFILES = "/clusters/prod/node-profiles"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    issued = pki.certificate_authority(tmp_path_factory.mktemp("ca") / "ca", "Nodes Page CA")
    return Path(issued.cert_file).read_text()


@pytest.fixture(scope="module")
def prod(site: Site) -> Site:
    """prod's credentials of cluster scope (which nodes may get), one of team-a's, and a
    default registry in prod's policy."""
    for name, provider, server in (
        ("hub-nodes", "dockerhub", None),
        ("corp-nodes", "custom", "registry.corp.example:5000"),
        ("team-a-nodes", "custom", "registry.team-a.example"),
    ):
        body = {"server": server} if server else {}
        site.create_credential(
            name=name,
            cluster="prod",
            scope="cluster",
            provider=provider,
            username="robot",
            password=f"{name}-s3cret",
            **body,
        )
    # team-a's registry: its owner sees it in the node profiles.
    site.create_credential(
        name="team-a-registry",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="custom",
        server="registry.team-a.example",
        username="robot",
        password="team-a-registry-s3cret",
    )
    r = site.api.put("/clusters/prod/policy", json={"default_registry": "harbor.corp.example/hub"})
    assert r.status_code == 200, r.text
    return site


def _profile(site: Site, name: str) -> httpx.Response:
    return site.api.get(f"{PROFILES}/{name}")


def _create(site: Site, body: dict[str, Any]) -> dict[str, Any]:
    r = site.api.post(PROFILES, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _registries_yaml(ca_pem: str) -> str:
    ca = "".join(f"    {line}\n" for line in ca_pem.strip().splitlines())
    return (
        "- host: registry.corp.example:5000\n"
        f"  ca: |\n{ca}"
        "- host: lab.corp.example\n"
        "  insecure: http\n"
        "- host: docker.io\n"
        "  mirrors:\n"
        "    - https://mirror.corp.example\n"
        "    - {url: https://art.corp.example/v2/hub, override_path: true}\n"
    )


def test_an_admin_adds_edits_and_deletes_a_profile(
    page: Any, prod: Site, ca_pem: str, console: Console
) -> None:
    site = prod
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Nodes", exact=True).click()
    expect()(page.locator(".empty")).to_contain_text("Choose a cluster")
    page.get_by_label("Cluster").select_option("prod")
    page.get_by_role("button", name="Show nodes").click()
    page.wait_for_url(site.url + "/clusters/prod/nodes")
    expect()(page.locator(".empty")).to_contain_text("No node profiles in prod")
    page.get_by_role("link", name="Add a node profile").click()

    # The mirror choice says what it makes of prod's policy.
    expect()(page.locator("#mirror_default_registry-hint")).to_contain_text(
        "sets the default registry harbor.corp.example/hub"
    )
    expect()(page.locator("#mirror_default_registry-hint")).to_contain_text(
        "https://harbor.corp.example/v2/hub"
    )
    # The credentials offered are prod's of cluster scope, not team-a's.
    boxes = page.locator("#credentials input[type=checkbox]")
    expect()(boxes).to_have_count(3)
    expect()(page.locator("#credentials")).not_to_contain_text("team-a-registry")
    assert "- host:" in (page.get_by_label("Registries (YAML)").get_attribute("placeholder") or "")
    assert violations(page) == []

    page.get_by_label("Name", exact=True).fill("gpu")
    page.get_by_label("Description (optional)").fill("the GPU pool")
    page.get_by_label("Node selector").fill("pool=gpu\ntopology.kubernetes.io/zone=eu-1")
    page.get_by_label("Registries (YAML)").fill(_registries_yaml(ca_pem))
    page.get_by_label("corp-nodes").check()
    page.get_by_label("The cluster policy's default registry as Docker Hub's first mirror").check()
    page.get_by_role("button", name="Add node profile").click()

    page.wait_for_url(site.url + "/clusters/prod/nodes?created=gpu")
    expect()(page.get_by_role("status")).to_have_text("Node profile gpu created.")
    row = page.locator("#profile-gpu")
    expect()(row).to_contain_text("the GPU pool")
    expect()(row.locator("td[data-label=Nodes]")).to_have_text(
        "pool=gpu, topology.kubernetes.io/zone=eu-1"
    )
    registries = row.locator("ul.registries > li")
    expect()(registries).to_have_count(3)
    expect()(registries.nth(0).locator(".badge")).to_have_text(["CA"])
    expect()(registries.nth(1).locator(".badge")).to_have_text(["insecure: plain HTTP"])
    expect()(registries.nth(2).locator(".badge")).to_have_text(["2 mirrors"])
    expect()(registries.nth(2).locator("ul.mirrors li")).to_have_text(
        ["https://mirror.corp.example", "https://art.corp.example/v2/hub (path for /v2)"]
    )
    expect()(row.locator("td[data-label=Credentials]")).to_have_text("corp-nodes")
    expect()(row.locator("td[data-label='Docker Hub mirror']")).to_contain_text(
        "harbor.corp.example/hub"
    )
    screenshot(page, "nodes-profiles")
    assert violations(page) == []

    # What the server keeps is what was typed, as a node profile file holds it.
    saved = _profile(site, "gpu").json()
    assert saved["node_selector"] == {"pool": "gpu", "topology.kubernetes.io/zone": "eu-1"}
    assert saved["registries"][0] == {"host": "registry.corp.example:5000", "ca": ca_pem}
    assert saved["registries"][1] == {"host": "lab.corp.example", "insecure": "http"}
    assert saved["registries"][2]["mirrors"] == [
        "https://mirror.corp.example",
        {"url": "https://art.corp.example/v2/hub", "override_path": True},
    ]
    assert (saved["credentials"], saved["mirror_default_registry"]) == (["corp-nodes"], True)
    assert saved["updated_by"] == "admin"

    # Edit: the form holds the profile as saved, the registries as YAML to edit.
    row.get_by_role("link", name="Edit gpu").click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("Edit node profile gpu")
    text = page.get_by_label("Registries (YAML)").input_value()
    assert load(text) == saved["registries"]
    assert "ca: |\n    -----BEGIN CERTIFICATE-----\n" in text
    expect()(page.get_by_label("Node selector")).to_have_value(
        "pool=gpu\ntopology.kubernetes.io/zone=eu-1"
    )
    expect()(page.get_by_label("corp-nodes")).to_be_checked()
    expect()(page.get_by_label("hub-nodes")).not_to_be_checked()
    page.get_by_label("Registries (YAML)").fill(text + "- host: quay.io\n  insecure: skip_verify\n")
    page.get_by_label("hub-nodes").check()
    page.get_by_label(
        "The cluster policy's default registry as Docker Hub's first mirror"
    ).uncheck()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(site.url + "/clusters/prod/nodes?saved=gpu")
    expect()(page.get_by_role("status")).to_have_text("Node profile gpu saved.")
    expect()(row.locator("ul.registries > li").nth(3).locator(".badge")).to_have_text(
        ["insecure: TLS not verified"]
    )
    expect()(row.locator("td[data-label='Docker Hub mirror']")).to_have_text("no")
    now = _profile(site, "gpu").json()
    assert now["registries"][:3] == saved["registries"]
    assert now["registries"][3] == {"host": "quay.io", "insecure": "skip_verify"}
    assert (now["credentials"], now["mirror_default_registry"]) == (
        ["corp-nodes", "hub-nodes"],
        False,
    )

    # Delete asks first.
    row.get_by_role("link", name="Delete gpu").click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("Delete node profile gpu?")
    expect()(page.get_by_role("alert")).to_contain_text("registry.corp.example:5000")
    assert violations(page) == []
    page.get_by_role("link", name="Cancel").click()
    assert _profile(site, "gpu").status_code == 200
    row.get_by_role("link", name="Delete gpu").click()
    page.get_by_role("button", name="Delete gpu").click()
    page.wait_for_url(site.url + "/clusters/prod/nodes?deleted=gpu")
    expect()(page.get_by_role("status")).to_have_text("Node profile gpu deleted.")
    expect()(page.locator("#profile-gpu")).to_have_count(0)
    assert _profile(site, "gpu").status_code == 404
    r = site.api.get("/audit", params={"object_type": "node_profile", "limit": 100})
    assert r.status_code == 200, r.text
    mine = [e for e in r.json()["items"] if e["object_id"] == saved["id"]]
    assert [(e["action"], e["actor"]) for e in mine] == [
        ("node_profile.delete", "admin"),
        ("node_profile.update", "admin"),
        ("node_profile.create", "admin"),
    ]
    assert console.csp_violations() == []


def test_errors_are_shown_at_their_field_with_the_input_kept(
    page: Any, prod: Site, ca_pem: str
) -> None:
    site = prod
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + PROFILES + "/new")
    registries = page.get_by_label("Registries (YAML)")

    # The service's refusal of the second registry's CA, with the field and its line.
    typed = "- host: quay.io\n- host: registry.lab.example\n  ca: |\n    not a certificate\n"
    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("Node selector").fill("pool=lab")
    registries.fill(typed)
    page.get_by_label("hub-nodes").check()
    page.get_by_role("button", name="Add node profile").click()
    error = page.locator("#registries-error")
    expect()(error).to_contain_text("registries[1].ca (line 3): ")
    expect()(error).to_contain_text("PEM")
    expect()(page.locator(".alert a[href='#registries']")).to_have_count(1)
    expect()(registries).to_have_attribute("aria-invalid", "true")
    expect()(registries).to_have_value(typed)
    expect()(page.get_by_label("Name", exact=True)).to_have_value("lab")
    expect()(page.get_by_label("Node selector")).to_have_value("pool=lab")
    expect()(page.get_by_label("hub-nodes")).to_be_checked()
    assert violations(page) == []  # WCAG 2.1 A/AA with the error shown
    screenshot(page, "nodes-profile-error")

    # A YAML syntax error names its line.
    broken = "- host: quay.io\n- host: lab.example\n  insecure: http\n   mirrors: []\n"
    registries.fill(broken)
    page.get_by_role("button", name="Add node profile").click()
    expect()(error).to_contain_text("registries: line 4, column 11: ")
    expect()(error).to_contain_text("fix the YAML there")
    expect()(registries).to_have_value(broken)

    # A selector line that is no KEY=VALUE, and a name that is no DNS label.
    registries.fill("")
    page.get_by_label("Node selector").fill("pool=lab\nzone eu")
    page.get_by_role("button", name="Add node profile").click()
    expect()(page.locator("#node_selector-error")).to_have_text("'zone eu' is not KEY=VALUE")
    page.get_by_label("Node selector").fill("pool=lab")
    page.get_by_label("Name", exact=True).fill("Lab_Pool")
    page.get_by_role("button", name="Add node profile").click()
    expect()(page.locator("#name-error")).to_contain_text(
        'the name may have only lowercase letters, digits and "-"'
    )
    page.get_by_label("Name", exact=True).fill("a" * 64)
    page.get_by_role("button", name="Add node profile").click()
    expect()(page.locator("#name-error")).to_contain_text("at most 63 characters")

    # Two profiles never select alike: refused at the selector, naming the other.
    _create(site, {"name": "lab-pool", "node_selector": {"pool": "lab"}})
    try:
        page.get_by_label("Name", exact=True).fill("lab-2")
        page.get_by_role("button", name="Add node profile").click()
        expect()(page.locator("#node_selector-error")).to_contain_text(
            "node profile 'lab-pool' has this node selector already"
        )
        names = [p["name"] for p in site.api.get(PROFILES).json()["items"]]
        assert "lab" not in names and "lab-2" not in names and "Lab_Pool" not in names
    finally:
        assert site.api.delete(f"{PROFILES}/lab-pool").status_code == 204


def test_a_profile_changed_meanwhile_is_not_overwritten(page: Any, prod: Site) -> None:
    site = prod
    _create(
        site,
        {
            "name": "edge",
            "node_selector": {"pool": "edge"},
            "registries": [{"host": "quay.io"}],
            "credentials": ["hub-nodes"],
        },
    )
    try:
        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + PROFILES + "/edge/edit")
        page.get_by_label("Description (optional)").fill("edge nodes")

        # Meanwhile someone else changes its credentials, through the API.
        current = _profile(site, "edge")
        body = {k: current.json()[k] for k in ("name", "node_selector", "registries")}
        r = site.api.put(
            f"{PROFILES}/edge",
            json=body | {"credentials": ["corp-nodes"]},
            headers={"If-Match": current.headers["etag"]},
        )
        assert r.status_code == 200, r.text

        page.get_by_role("button", name="Save changes").click()
        conflict = page.locator("#conflict")
        expect()(conflict).to_contain_text(
            "Someone else changed this node profile while you were editing it"
        )
        expect()(conflict.locator("dl.differs dt")).to_have_text(["Description", "Credentials"])
        expect()(conflict.locator("dl.differs dd")).to_have_text(
            ["saved now: (empty)", "saved now: corp-nodes"]
        )
        expect()(page.get_by_label("Description (optional)")).to_have_value("edge nodes")
        expect()(page.get_by_label("hub-nodes")).to_be_checked()
        assert violations(page) == []
        now = _profile(site, "edge").json()
        assert (now["description"], now["credentials"]) == ("", ["corp-nodes"])

        # Saved again, knowingly: the form replaces what is there.
        page.get_by_role("button", name="Save changes").click()
        expect()(page.get_by_role("status")).to_have_text("Node profile edge saved.")
        now = _profile(site, "edge").json()
        assert (now["description"], now["credentials"]) == ("edge nodes", ["hub-nodes"])

        # A delete confirmed on a profile changed since the confirmation was shown.
        page.locator("#profile-edge").get_by_role("link", name="Delete edge").click()
        current = _profile(site, "edge")
        body = {k: current.json()[k] for k in ("name", "node_selector", "registries")}
        r = site.api.put(
            f"{PROFILES}/edge",
            json=body | {"registries": [{"host": "ghcr.io"}]},
            headers={"If-Match": current.headers["etag"]},
        )
        assert r.status_code == 200, r.text
        page.get_by_role("button", name="Delete edge").click()
        expect()(page.locator("#conflict")).to_contain_text("so it was not deleted")
        expect()(page.locator("#consequences")).to_contain_text("ghcr.io")
        assert _profile(site, "edge").status_code == 200
        page.get_by_role("button", name="Delete edge").click()
        expect()(page.get_by_role("status")).to_have_text("Node profile edge deleted.")
        assert _profile(site, "edge").status_code == 404
    finally:
        assert site.api.delete(f"{PROFILES}/edge").status_code in (204, 404)


def test_an_owner_reads_the_narrowed_view_and_a_member_is_refused(
    page: Any, prod: Site, browser: Any
) -> None:
    site = prod
    _create(
        site,
        {
            "name": "base",
            "registries": [
                {"host": "registry.team-a.example", "insecure": "skip_verify"},
                {"host": "secret-internal.example"},
            ],
            "credentials": ["team-a-nodes", "hub-nodes"],
        },
    )
    try:
        log_in(page, site, "alice")  # owner of team-a, in prod
        page.get_by_role("link", name="Nodes", exact=True).click()
        # Only the clusters of her projects are offered.
        options = page.locator("#pick-cluster option")
        expect()(options).to_have_text(["Choose", "prod"])
        page.get_by_label("Cluster").select_option("prod")
        page.get_by_role("button", name="Show nodes").click()
        row = page.locator("#profile-base")
        expect()(row.locator("ul.registries > li code")).to_have_text(["registry.team-a.example"])
        expect()(row.locator("td[data-label=Credentials]")).to_have_text("team-a-nodes")
        expect()(page.locator("#narrowed")).to_contain_text("of your projects only")
        expect()(page.get_by_role("link", name="Add a node profile")).to_have_count(0)
        expect()(row.get_by_role("link")).to_have_count(0)
        assert "secret-internal.example" not in page.content()
        assert violations(page) == []
        # The forms are not hers.
        for path in (f"{PROFILES}/new", f"{PROFILES}/base/edit", f"{PROFILES}/base/delete"):
            response = page.goto(site.url + path)
            assert response.status == 403, path
            expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
        # A cluster without her projects is not there for her.
        assert page.goto(site.url + "/clusters/staging/nodes").status == 404
        # Her project's page leads to its cluster's nodes.
        page.goto(f"{site.url}/projects/{site.projects['team-a']}")
        page.get_by_role("link", name="Its cluster's nodes").click()
        page.wait_for_url(site.url + "/clusters/prod/nodes")

        context = browser.new_context()
        try:
            member = context.new_page()
            log_in(member, site, "bob")  # member of team-a
            expect()(
                member.get_by_role("navigation").get_by_role("link", name="Nodes", exact=True)
            ).to_have_count(0)
            member.goto(f"{site.url}/projects/{site.projects['team-a']}")
            expect()(member.get_by_role("link", name="Its policy")).to_have_count(1)
            expect()(member.get_by_role("link", name="Its cluster's nodes")).to_have_count(0)
            for path in ("/clusters/prod/nodes", "/nodes"):
                response = member.goto(site.url + path)
                assert response.status == 403, path
                expect()(member.get_by_role("heading", level=1)).to_have_text("Not allowed")
                expect()(member.locator("main")).to_contain_text("node profiles")
        finally:
            context.close()
    finally:
        assert site.api.delete(f"{PROFILES}/base").status_code == 204


def test_what_the_nodes_reported_is_shown_and_marked(page: Any, prod: Site) -> None:
    site = prod
    issued = site.api.post("/clusters/prod/node-tokens", json={})
    assert issued.status_code == 201, issued.text
    node = {"Authorization": f"Bearer {issued.json()['token']}"}
    reports = [
        ("node-a", "applied", ""),
        ("node-b", "drifted", "left alone: /etc/containerd/certs.d/quay.io/hosts.toml"),
        ("node-c", "failed", "could not write /etc/containerd/config.toml: read-only"),
    ]
    for name, state, detail in reports:
        body = {
            "cluster": "prod",
            "node": name,
            "profile": "pool-x",
            "digest": "d1",
            "state": state,
            "detail": detail,
        }
        r = httpx.post(site.url + "/api/v1/node-reports", json=body, headers=node, trust_env=False)
        assert r.status_code == 204, r.text

    for user in ("admin", "alice"):
        page.context.clear_cookies()
        log_in(page, site, user, site.server.admin_password if user == "admin" else None)
        page.goto(site.url + "/clusters/prod/nodes")
        rows = page.locator("#states tbody tr")
        expect()(rows).to_have_count(3)
        expect()(page.locator("#state-counts")).to_have_text(
            "3 nodes: 1 applied, 1 drifted, 1 failed"
        )
        for i, (name, state, detail) in enumerate(reports):
            expect()(rows.nth(i)).to_have_class(f"node-{state}")
            expect()(rows.nth(i).locator("td[data-label=Node]")).to_have_text(name)
            expect()(rows.nth(i).locator("td[data-label=Profile]")).to_have_text("pool-x")
            expect()(rows.nth(i).locator(".badge")).to_have_text(state)
            expect()(rows.nth(i).locator("td[data-label=Detail]")).to_have_text(detail)
            expect()(rows.nth(i).locator("td[data-label=Reported]")).to_have_text(
                re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
            )
    screenshot(page, "nodes-states")
    assert violations(page) == []


# --------------------------------------------------------------------------- over plain HTTP


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as c:
        yield c


def _web_login(client: httpx.Client, user: str, password: str) -> str:
    """Log in through the login form; the CSRF token of the pages that follow."""
    page = client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    r = client.post("/login", data={"username": user, "password": password, "csrf": match[1]})
    assert r.status_code == 303, r.text
    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/nodes").text)
    assert match
    return match.group(1)


def test_the_forms_need_their_csrf_token(client: httpx.Client, prod: Site) -> None:
    site = prod
    csrf = _web_login(client, "admin", site.server.admin_password)
    form = {"name": "csrf-made", "registries": "- host: quay.io\n"}
    for token in ("", "0" * 64):
        r = client.post(PROFILES + "/new", data=form | {"csrf": token})
        assert r.status_code == 403 and "reload and retry" in r.text
    # From another site, even with the right token.
    r = client.post(
        PROFILES + "/new", data=form | {"csrf": csrf}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403
    assert _profile(site, "csrf-made").status_code == 404
    # With it, from here, it works.
    r = client.post(PROFILES + "/new", data=form | {"csrf": csrf})
    assert (
        r.status_code == 303 and r.headers["location"] == "/clusters/prod/nodes?created=csrf-made"
    )
    version = re.search(
        r'name="version" value="([^"]+)"', client.get(PROFILES + "/csrf-made/edit").text
    )
    assert version
    edit = form | {"description": "changed", "version": version[1]}
    assert client.post(PROFILES + "/csrf-made/edit", data=edit).status_code == 403
    assert (
        client.post(PROFILES + "/csrf-made/delete", data={"version": version[1]}).status_code == 403
    )
    assert _profile(site, "csrf-made").json()["description"] == ""
    r = client.post(PROFILES + "/csrf-made/delete", data={"csrf": csrf, "version": version[1]})
    assert r.status_code == 303
    assert _profile(site, "csrf-made").status_code == 404


def test_an_owner_cannot_post_the_forms(client: httpx.Client, prod: Site) -> None:
    site = prod
    _create(site, {"name": "owned-not", "node_selector": {"pool": "owned-not"}})
    try:
        csrf = _web_login(client, "alice", "alice-owner-pw-1")
        r = client.post(PROFILES + "/new", data={"csrf": csrf, "name": "alices"})
        assert r.status_code == 403 and "only an admin" in r.text
        r = client.post(PROFILES + "/owned-not/delete", data={"csrf": csrf})
        assert r.status_code == 403
        assert _profile(site, "alices").status_code == 404
        assert _profile(site, "owned-not").status_code == 200
    finally:
        assert site.api.delete(f"{PROFILES}/owned-not").status_code == 204
