"""The Projects pages and editing a project's members, in a real browser against a real server.

The site is shared by this module: every test puts the members of the site's projects back
as they were, and creates the other users it needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.conftest import PASSWORDS, Console, Site, log_in, screenshot

pytestmark = pytest.mark.integration


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def _members(site: Site, project: str) -> dict[str, str]:
    r = site.api.get(f"/projects/{site.projects[project]}/members")
    assert r.status_code == 200, r.text
    return {m["user"]: m["role"] for m in r.json()["items"]}


@pytest.fixture(autouse=True)
def _restore_members(site: Site) -> Iterator[None]:
    before = {name: _members(site, name) for name in site.projects}
    yield
    for name, members in before.items():
        path = f"/projects/{site.projects[name]}/members/"
        now = _members(site, name)
        for user in now.keys() - members.keys():
            assert site.api.delete(path + user).status_code == 204
        for user, role in members.items():
            if now.get(user) != role:
                assert site.api.put(path + user, json={"role": role}).status_code == 200


def _password(user: str) -> str:
    return f"{user}-throwaway-pw-7"


def _new_user(site: Site, user: str, project: str = "", role: str = "") -> None:
    r = site.api.post("/users", json={"username": user, "password": _password(user)})
    assert r.status_code == 201, r.text
    if project:
        r = site.api.put(f"/projects/{site.projects[project]}/members/{user}", json={"role": role})
        assert r.status_code == 200, r.text


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


def _api_get(site: Site, token: str, path: str) -> httpx.Response:
    return httpx.get(
        site.url + "/api/v1" + path,
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=30,
    )


def _audit(site: Site, action: str) -> list[dict[str, Any]]:
    r = site.api.get("/audit", params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _audited(site: Site, action: str, project: str, **change: str) -> bool:
    key = "after" if action == "member.set" else "before"
    return any(
        e["project_id"] == site.projects[project] and (e[key] or {}).items() >= change.items()
        for e in _audit(site, action)
    )


def _users(page: Any) -> Any:
    return page.locator('#members td[data-label="User"]')


def _roles(page: Any) -> Any:
    return page.locator('#members td[data-label="Role"]')


def _open(page: Any, site: Site, project: str) -> None:
    page.goto(f"{site.url}/projects/{site.projects[project]}")
    expect()(page.get_by_role("heading", level=1)).to_have_text(project)


def _add(page: Any, user: str, role: str) -> None:
    page.get_by_label("User name").fill(user)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Add member").click()


def _set_role(page: Any, user: str, role: str) -> None:
    page.get_by_label(f"Role of {user}", exact=True).select_option(role)
    page.get_by_role("button", name=f"Save role of {user}", exact=True).click()
    expect()(page.get_by_role("status")).to_contain_text(f"{user} is now {role} of")


def _remove(page: Any, user: str, warning: str) -> None:
    page.get_by_role("link", name=f"Remove {user}", exact=True).click()
    expect()(page.get_by_role("heading", level=1)).to_contain_text(f"Remove {user} from")
    expect()(page.get_by_role("alert")).to_contain_text(warning)
    page.get_by_role("button", name=f"Remove {user}", exact=True).click()


def test_admin_lists_projects_and_edits_members(
    page: Any, browser: Any, site: Site, console: Console
) -> None:
    team_a = site.projects["team-a"]
    site.create_credential(
        name="projects-a-pull",
        cluster="prod",
        scope="project",
        project=team_a,
        provider="ghcr",
        username="octo",
        password="projects-s3cret-1",
    )
    carol_token = _token(site, "carol", PASSWORDS["carol"])
    assert _api_get(site, carol_token, f"/projects/{team_a}/members").status_code == 404

    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Projects", exact=True).click()
    page.wait_for_url(site.url + "/projects")
    expect()(page.get_by_role("link", name="Projects", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    rows = page.locator("#projects tbody tr")
    expect()(rows).to_have_count(3)
    row = rows.filter(has_text="team-a")
    for label, value in (("Cluster", "prod"), ("Namespaces", "2"), ("Your role", "admin")):
        expect()(row.locator(f'[data-label="{label}"]')).to_have_text(value)
    expect()(row.locator('[data-label="Members"]')).to_have_text("2")
    expect()(rows.filter(has_text="team-c").locator('[data-label="Cluster"]')).to_have_text(
        "staging"
    )
    screenshot(page, "projects")

    row.get_by_role("link", name="team-a").click()
    page.wait_for_url(f"{site.url}/projects/{team_a}")
    expect()(page.locator('#namespaces [data-label="Namespace"] code')).to_have_text(
        ["a-api", "a-web"]
    )
    expect()(_users(page)).to_have_text(["alice", "bob"])
    expect()(_roles(page)).to_have_text(["owner", "member"])
    # Admins pick from the users who are not in the project yet.
    options = page.locator("#known-users option")
    expect()(options).not_to_have_count(0)
    assert "alice" not in [o.get_attribute("value") for o in options.all()]

    _add(page, "carol", "member")
    expect()(page.get_by_role("status")).to_have_text("carol is now member of team-a.")
    expect()(_users(page)).to_have_text(["alice", "bob", "carol"])
    assert _audited(site, "member.set", "team-a", user="carol", role="member")
    # Her access counts at once, through the API and the pages.
    assert _api_get(site, carol_token, f"/projects/{team_a}/members").status_code == 200
    other = browser.new_context()
    try:
        p2 = other.new_page()
        log_in(p2, site, "carol")
        p2.goto(f"{site.url}/credentials?project={team_a}")
        expect()(p2.locator("#results")).to_contain_text("projects-a-pull")
        p2.goto(site.url + "/projects")
        expect()(p2.locator("#projects tbody tr", has_text="team-a")).to_contain_text("member")
    finally:
        other.close()

    _set_role(page, "bob", "owner")
    expect()(_roles(page)).to_have_text(["owner", "owner", "member"])
    assert _audited(site, "member.set", "team-a", user="bob", role="owner")
    assert _members(site, "team-a")["bob"] == "owner"
    screenshot(page, "project")

    # Cancel on the confirmation changes nothing; confirming removes.
    page.get_by_role("link", name="Remove carol", exact=True).click()
    expect()(page.get_by_role("alert")).to_contain_text("carol loses the member role in team-a")
    page.get_by_role("link", name="Cancel").click()
    expect()(_users(page)).to_have_text(["alice", "bob", "carol"])
    _remove(page, "carol", "carol loses the member role")
    expect()(page.get_by_role("status")).to_have_text("carol is no longer in team-a.")
    expect()(_users(page)).to_have_text(["alice", "bob"])
    assert _audited(site, "member.remove", "team-a", user="carol", role="member")
    assert _api_get(site, carol_token, f"/projects/{team_a}/members").status_code == 404
    assert console.csp_violations() == []


def test_owner_edits_own_project_only(page: Any, site: Site, console: Console) -> None:
    _new_user(site, "erik")
    log_in(page, site, "alice")  # owner of team-a
    page.goto(site.url + "/projects")
    rows = page.locator("#projects tbody tr")
    expect()(rows).to_have_count(1)
    expect()(rows.locator('[data-label="Your role"]')).to_have_text("owner")

    _open(page, site, "team-a")
    # Owners type the name: no list of the users.
    expect()(page.locator("datalist")).to_have_count(0)
    _add(page, "", "member")
    expect()(page.locator("#user-error")).to_have_text("type the user name of the new member")
    _add(page, "nobody-here", "member")
    expect()(page.locator("#user-error")).to_have_text("no user 'nobody-here'")
    expect()(page.get_by_label("User name")).to_have_attribute(
        "aria-describedby", re.compile("user-error")
    )
    expect()(page.get_by_label("User name")).to_have_value("nobody-here")
    assert "nobody-here" not in _members(site, "team-a")

    _add(page, "erik", "viewer")
    expect()(page.get_by_role("status")).to_have_text("erik is now viewer of team-a.")
    _set_role(page, "erik", "member")
    expect()(_roles(page)).to_have_text(["owner", "member", "member"])
    _remove(page, "erik", "erik loses the member role")
    expect()(_users(page)).to_have_text(["alice (you)", "bob"])
    assert _audited(site, "member.remove", "team-a", user="erik", role="member")

    # Another project is not there for her at all.
    page.goto(f"{site.url}/projects/{site.projects['team-c']}")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not found")
    page.goto(f"{site.url}/projects/{site.projects['team-c']}/members/dave/remove")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert console.csp_violations() == []


def test_member_sees_members_without_controls(page: Any, site: Site, console: Console) -> None:
    log_in(page, site, "bob")  # member of team-a
    _open(page, site, "team-a")
    expect()(_users(page)).to_have_text(["alice", "bob (you)"])
    expect()(page.locator("main button")).to_have_count(0)
    expect()(page.locator("main select")).to_have_count(0)
    expect()(page.locator("main form")).to_have_count(0)
    expect()(page.get_by_role("link", name=re.compile("^Remove"))).to_have_count(0)

    # His own CSRF token does not make him an owner.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    base = f"{site.url}/projects/{site.projects['team-a']}/members"
    for url, form in (
        (base, {"csrf": csrf, "user": "carol", "role": "owner"}),
        (base, {"csrf": csrf, "user": "", "role": "owner"}),
        (base + "/bob", {"csrf": csrf, "role": "owner"}),
        (base + "/alice/remove", {"csrf": csrf}),
    ):
        r = page.request.post(url, form=form, max_redirects=0)
        assert r.status == 403, (url, r.status)
        assert "only an admin or the project&#39;s owner can change its members" in r.text()
    assert page.request.get(base + "/alice/remove").status == 403
    assert _members(site, "team-a") == {"alice": "owner", "bob": "member"}
    assert console.csp_violations() == []


def test_a_role_change_applies_at_once(page: Any, site: Site, console: Console) -> None:
    _new_user(site, "fern", "team-b", "owner")
    log_in(page, site, "fern", _password("fern"))
    _open(page, site, "team-b")
    expect()(page.get_by_role("button", name="Add member")).to_be_visible()
    stale = page.locator("input[name=csrf]").first.get_attribute("value")

    r = site.api.put(f"/projects/{site.projects['team-b']}/members/fern", json={"role": "member"})
    assert r.status_code == 200, r.text
    page.reload()
    expect()(_roles(page)).to_have_text(["member", "member"])
    expect()(page.locator("main button")).to_have_count(0)
    expect()(page.locator("main select")).to_have_count(0)
    # The page she had open still posts, but the service refuses it now.
    r2 = page.request.post(
        f"{site.url}/projects/{site.projects['team-b']}/members",
        form={"csrf": stale, "user": "fern", "role": "owner"},
        max_redirects=0,
    )
    assert r2.status == 403
    assert _members(site, "team-b")["fern"] == "member"
    assert console.csp_violations() == []


def test_owner_removing_themselves_loses_access(page: Any, site: Site, console: Console) -> None:
    _new_user(site, "gus", "team-c", "owner")
    log_in(page, site, "gus", _password("gus"))
    _open(page, site, "team-c")
    _remove(page, "gus", "This is you. You lose your owner role in team-c at once")
    page.wait_for_url(site.url + "/projects?left=team-c")
    expect()(page.get_by_role("status")).to_contain_text("You left project team-c")
    expect()(page.locator(".empty")).to_contain_text("You are in no project.")
    page.goto(f"{site.url}/projects/{site.projects['team-c']}")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert "gus" not in _members(site, "team-c")
    assert console.csp_violations() == []


def test_empty_state_for_a_user_in_no_project(page: Any, site: Site, console: Console) -> None:
    _new_user(site, "hana")
    log_in(page, site, "hana", _password("hana"))
    page.get_by_role("link", name="Projects", exact=True).click()
    page.wait_for_url(site.url + "/projects")
    expect()(page.locator(".empty")).to_contain_text("You are in no project.")
    expect()(page.locator("#projects")).to_have_count(0)
    screenshot(page, "projects-empty")
    assert console.csp_violations() == []


def test_add_member_without_javascript(browser: Any, site: Site) -> None:
    _new_user(site, "ivan")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        _open(page, site, "team-b")
        _add(page, "nobody-either", "member")
        expect()(page.locator("#user-error")).to_have_text("no user 'nobody-either'")
        _add(page, "ivan", "viewer")
        expect()(page.get_by_role("status")).to_have_text("ivan is now viewer of team-b.")
        expect()(_users(page)).to_have_text(["carol", "ivan"])
        _remove(page, "ivan", "ivan loses the viewer role")
        expect()(_users(page)).to_have_text(["carol"])
    finally:
        context.close()
    assert "ivan" not in _members(site, "team-b")


def test_narrow_screen_has_no_sideways_scroll(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        _open(page, site, "team-a")
        expect()(page.get_by_role("button", name="Add member")).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        screenshot(page, "project-narrow")
    finally:
        context.close()
