"""Accessibility of every page: axe-core's WCAG 2 A/AA rules (labels, names, contrast, ARIA,
landmarks) in real Chromium, at desktop and phone width, and the main paths by keyboard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Site, log_in, violations

pytestmark = pytest.mark.integration


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_axe_finds_what_it_should(page: Any) -> None:
    """The audit really runs: a page with an unlabelled field and faint text fails it."""
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><input id="x">'
        '<p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    found = " ".join(violations(page))
    assert "label" in found and "color-contrast" in found, found


@pytest.fixture(scope="module")
def ids(site: Site) -> dict[str, str]:
    cred = site.create_credential(
        name="a11y-quay",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="quay",
        username="org+a11y",
        password="a11y-s3cret",
    )
    # A long name and address without a "-" to break at: they must wrap on a phone too.
    dotted = site.create_credential(
        name="registrydepartmentexample.internalcompanyname.example.com",
        cluster="prod",
        scope="namespace",
        namespace="a-web",
        provider="custom",
        server="registrydepartmentexampleinternal.companynameandmore.example.com:5000",
        username="robot",
        password="a11y-s3cret-2",
    )
    users = {u["username"]: u["id"] for u in site.api.get("/users").json()["items"]}
    profile = {"name": "a11y-pool", "registries": [{"host": "quay.io", "insecure": "http"}]}
    r = site.api.post("/clusters/prod/node-profiles", json=profile)
    assert r.status_code == 201, r.text
    off = site.api.post("/users", json={"username": "a11y-off", "password": "a11y-off-pw-123"})
    assert site.api.post(f"/users/{off.json()['id']}/disable").status_code == 200
    return {
        "cred": cred["id"],
        "project": site.projects["team-a"],
        "alice": users["alice"],
        "off": off.json()["id"],
        "dotted": dotted["id"],
    }


def _pages(ids: dict[str, str]) -> list[str]:
    cred, project = ids["cred"], ids["project"]
    return [
        "/credentials",
        "/credentials?q=nothing-matches",
        "/credentials/new",
        "/credentials/new?provider=gcr",
        f"/credentials/{cred}",
        f"/credentials/{cred}/edit",
        f"/credentials/{cred}/delete",
        f"/credentials/{ids['dotted']}",
        f"/credentials/{ids['dotted']}/edit",
        f"/credentials/{ids['dotted']}/delete",
        "/policies?cluster=prod",
        f"/policies?project={project}",
        "/checks",
        "/projects",
        f"/projects/{project}",
        f"/projects/{project}/members/bob/remove",
        "/workloads/new",
        "/nodes",
        "/clusters/prod/nodes",
        "/clusters/prod/node-profiles/new",
        "/clusters/prod/node-profiles/a11y-pool/edit",
        "/clusters/prod/node-profiles/a11y-pool/delete",
        "/audit",
        "/audit?page=999",
        "/users",
        f"/users/{ids['alice']}",
        f"/users/{ids['alice']}/delete",
        f"/users/{ids['off']}",
        "/account/password",
        "/no/such/page",
        "/credentials/new?scope=project",
        # The Registries list's bulk change, the Workloads list (these clusters have no
        # access settings: the page says so).
        f"/credentials/bulk?action=delete&id={cred}",
        f"/credentials/bulk/done?action=deactivate&changed=1&refused={cred}",
        "/workloads",
        f"/workloads?credential={cred}",
        "/clusters",
        "/clusters/new",
        "/clusters/prod",
        "/clusters/prod/edit",
        "/clusters/prod/delete",
        "/projects/new",
    ]


def _wider_than(page: Any, width: int) -> list[str]:
    """The page as it is now, if it scrolls sideways at this width."""
    wide = page.evaluate("document.documentElement.scrollWidth")
    return [f"{page.url}: {wide} px wide at {width} px"] if wide > width else []


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_passes_axe(browser: Any, site: Site, ids: dict[str, str], width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(site.url + "/login")
        found = violations(page)
        log_in(page, site, "admin", site.server.admin_password)
        for path in _pages(ids):
            page.goto(site.url + path)
            found += violations(page) + _wider_than(page, width)
        # Forms showing their errors: the messages and marked fields must pass too.
        page.goto(site.url + "/credentials/new?provider=custom")
        page.get_by_role("button", name="Save registry").click()
        expect()(page.locator(".field-error").first).to_be_visible()
        found += violations(page) + _wider_than(page, width)
        page.goto(site.url + "/checks")
        page.get_by_role("button", name="Check").click()
        expect()(page.locator("#image-error")).to_be_visible()
        found += violations(page)
        page.goto(site.url + "/clusters/new")
        page.get_by_role("button", name="Save cluster").click()
        expect()(page.locator("#kubeconfig-error")).to_be_visible()
        found += violations(page)
        page.goto(f"{site.url}/projects/{ids['project']}")
        page.get_by_role("button", name="Add namespace").click()
        expect()(page.locator("#namespace-error")).to_be_visible()
        found += violations(page)
    finally:
        context.close()
    assert found == []


def test_a_member_s_pages_pass_axe(page: Any, site: Site, ids: dict[str, str]) -> None:
    log_in(page, site, "bob")
    found = []
    paths = ("/credentials", f"/credentials/{ids['cred']}", f"/projects/{ids['project']}")
    for path in (*paths, "/credentials/new"):
        page.goto(site.url + path)
        found += violations(page)
    assert found == []


def test_log_in_and_add_a_registry_by_keyboard_alone(page: Any, site: Site) -> None:
    page.goto(site.url + "/login")
    # The user name field has the focus from the start.
    expect()(page.locator(":focus")).to_have_id("username")
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("alice-owner-pw-1")
    page.keyboard.press("Enter")
    page.wait_for_url(site.url + "/credentials")
    # On every page the skip link comes first, and leads past the navigation.
    page.keyboard.press("Tab")
    expect()(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect()(page.locator(":focus")).to_have_id("main")

    page.goto(site.url + "/credentials/new?provider=custom")
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("keyboard-only")
    # Every control on the way to Save is reached with Tab and shows where focus is.
    typed = {
        "namespace": "a-web",
        "server": "keyboard.example.com",
        "username": "robot",
        "password": "keyboard-s3cret",
    }
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        outline = focused.evaluate("e => getComputedStyle(e).outlineStyle")
        assert outline != "none", focused.evaluate("e => e.outerHTML")
        field = focused.evaluate("e => e.id")
        if field in typed:
            page.keyboard.type(typed.pop(field))
        if focused.evaluate("e => e.textContent.trim()") == "Save registry":
            break
    else:
        pytest.fail("Save registry was not reached with Tab")
    assert typed == {}, f"never focused: {typed}"
    page.keyboard.press("Enter")
    expect()(page.get_by_role("heading", level=1)).to_have_text("keyboard-only active")
