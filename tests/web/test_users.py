"""Users, tokens and changing one's password, in a real browser against a real server.

The first-start admin's password change revokes the admin's other tokens (the API
client's too), so that test runs last in this module.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.integration.test_cli_server import ADMIN_TOKEN
from tests.web.conftest import PASSWORDS, Console, Site, log_in, screenshot

pytestmark = pytest.mark.integration

ERIN_PASSWORD = "erin-initial-pw-5"  # throwaway test values
NEW_ADMIN_PASSWORD = "a-new-admin-passphrase-6"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def _api_login(site: Site, user: str, password: str) -> httpx.Response:
    return httpx.post(
        site.url + "/api/v1/login",
        json={"username": user, "password": password},
        trust_env=False,
        timeout=30,
    )


def _me(site: Site, token: str) -> int:
    r = httpx.get(
        site.url + "/api/v1/me",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=30,
    )
    return r.status_code


def test_admin_lists_and_creates_users(page: Any, site: Site, console: Console) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Users").click()
    page.wait_for_url(site.url + "/users")
    rows = page.locator("tbody tr")
    expect()(rows).to_have_count(5)
    expect()(page.locator("tbody tr", has_text="admin").first).to_contain_text("admin")

    page.get_by_label("User name").fill("Erin!")
    page.get_by_label("Initial password").fill("short")
    page.get_by_role("button", name="Add user").click()
    # Both problems at once, in words.
    expect()(page.locator("#username-error")).to_contain_text(
        'the user name may have only lowercase letters, digits and "-"'
    )
    expect()(page.locator("#password-error")).to_contain_text("at least 12 characters")
    expect()(page.get_by_label("Initial password")).to_have_value("")
    page.get_by_label("User name").fill("erin")
    page.get_by_label("Initial password").fill("short")
    page.get_by_role("button", name="Add user").click()
    expect()(page.locator("#password-error")).to_have_text(
        "a password needs at least 12 characters"
    )
    page.get_by_label("Initial password").fill(ERIN_PASSWORD)
    page.get_by_label("Viewer: reads every object").check()
    page.get_by_role("button", name="Add user").click()
    page.wait_for_url(site.url + "/users?created=erin")
    expect()(page.get_by_role("status")).to_have_text("User erin created.")
    expect()(page.locator("tbody tr", has_text="erin")).to_contain_text("viewer")
    assert ERIN_PASSWORD not in page.content()
    screenshot(page, "users")
    assert _api_login(site, "erin", ERIN_PASSWORD).status_code == 201

    page.get_by_label("User name").fill("erin")
    page.get_by_label("Initial password").fill(ERIN_PASSWORD)
    page.get_by_role("button", name="Add user").click()
    expect()(page.locator("#username-error")).to_have_text("user 'erin' already exists")
    assert console.csp_violations() == []


def test_admin_revokes_a_users_token(page: Any, site: Site) -> None:
    issued = _api_login(site, "alice", PASSWORDS["alice"]).json()
    assert _me(site, issued["token"]) == 200
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/users")
    page.get_by_role("link", name="alice").click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("alice")
    row = page.locator("#tokens tbody tr").first  # newest first
    expect()(row).to_contain_text("login")
    expect()(row).to_contain_text("valid")
    assert issued["token"] not in page.content()
    row.get_by_role("button", name="Revoke").click()
    expect()(page.get_by_role("status")).to_have_text("Token revoked.")
    expect()(page.locator("#tokens tbody tr").first).to_contain_text("revoked")
    assert _me(site, issued["token"]) == 401


def test_members_get_no_user_pages(page: Any, site: Site) -> None:
    log_in(page, site, "bob")
    expect()(page.get_by_role("link", name="Users")).to_have_count(0)
    page.goto(site.url + "/users")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    users = site.api.get("/users").json()["items"]
    alice = next(u for u in users if u["username"] == "alice")
    page.goto(f"{site.url}/users/{alice['id']}")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    # bob's own tokens: this session is marked, and can be ended from here.
    page.get_by_role("link", name="Change password").click()
    page.get_by_role("link", name="Your API tokens").click()
    expect()(page.locator("#tokens")).to_contain_text("(this session)")


def _new_user(site: Site, name: str, password: str) -> str:
    r = site.api.post("/users", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    user_id: str = r.json()["id"]
    return user_id


def test_an_admin_resets_a_users_password(page: Any, site: Site, browser: Any) -> None:
    old, new = "frank-initial-pw-7", "frank-reset-passphrase-8"  # throwaway test values
    frank_id = _new_user(site, "frank", old)
    other = browser.new_context()
    try:
        franks = other.new_page()
        log_in(franks, site, "frank", old)

        log_in(page, site, "admin", site.server.admin_password)
        # No reset form for one's own account: that is Change password, with the current one.
        page.goto(site.url + "/users/admin")
        expect()(page.get_by_role("heading", name="API tokens")).to_be_visible()
        expect()(page.locator("#reset-form")).to_have_count(0)

        page.goto(f"{site.url}/users/{frank_id}")
        page.get_by_label("New password", exact=True).fill(new)
        page.get_by_label("New password again").fill(new + "x")
        page.get_by_role("button", name="Reset password").click()
        expect()(page.locator("#again-error")).to_contain_text("the two passwords differ")
        expect()(page.get_by_label("New password", exact=True)).to_have_value("")
        page.get_by_label("New password", exact=True).fill("frank")
        page.get_by_label("New password again").fill("frank")
        page.get_by_role("button", name="Reset password").click()
        expect()(page.locator("#password-error")).to_have_text(
            "a password needs at least 12 characters"
        )
        assert _api_login(site, "frank", old).status_code == 201  # nothing changed so far

        page.get_by_label("New password", exact=True).fill(new)
        page.get_by_label("New password again").fill(new)
        page.get_by_role("button", name="Reset password").click()
        page.wait_for_url(re.compile(rf"/users/{frank_id}\?reset=2$"))
        expect()(page.get_by_role("status")).to_have_text(
            "Password reset; 2 of the user's sessions and tokens were revoked."
        )
        expect()(page.locator("#tokens tbody tr", has_text="valid")).to_have_count(0)
        assert new not in page.content()
        screenshot(page, "user-reset-password")

        # frank's browser session is over; the new password is the one that works.
        franks.goto(site.url + "/credentials")
        franks.wait_for_url(re.compile(r"/login\?next="))
        assert _api_login(site, "frank", old).status_code == 401
        log_in(franks, site, "frank", new)
        page.goto(site.url + "/audit?action=user.password_reset")
        expect()(page.locator("tbody tr")).to_have_count(1)
        expect()(page.locator("tbody tr")).to_contain_text("admin")
    finally:
        other.close()


def test_wrong_current_passwords_are_throttled(page: Any, site: Site) -> None:
    password = "gina-initial-pw-9"  # throwaway test value
    _new_user(site, "gina", password)
    log_in(page, site, "gina", password)
    page.goto(site.url + "/account/password")

    def attempt(current: str) -> Any:
        page.get_by_label("Current password").fill(current)
        page.get_by_label("New password", exact=True).fill("gina-next-passphrase")
        page.get_by_label("New password again").fill("gina-next-passphrase")
        with page.expect_response(site.url + "/account/password") as answer:
            page.get_by_role("button", name="Change password").click()
        return answer.value

    for i in range(5):
        assert attempt(f"guess-{i}").status == 422
        expect()(page.locator("#current-error")).to_have_text("the current password is wrong")
    # The sixth guess within the minute is refused unchecked, and so is the right password.
    for current in ("guess-5", password):
        assert attempt(current).status == 429
        expect()(page.get_by_role("alert")).to_contain_text("try again in")
    assert _api_login(site, "gina", password).status_code == 201  # logging in is unaffected


def test_an_admin_disables_enables_and_deletes_a_user(page: Any, site: Site, browser: Any) -> None:
    password = "hank-initial-pw-10"  # throwaway test value
    hank_id = _new_user(site, "hank", password)
    for project, role in (("team-a", "member"), ("team-c", "viewer")):
        r = site.api.put(f"/projects/{site.projects[project]}/members/hank", json={"role": role})
        assert r.status_code == 200, r.text
    token = _api_login(site, "hank", password).json()["token"]
    assert _me(site, token) == 200
    other = browser.new_context()
    try:
        hanks = other.new_page()
        log_in(hanks, site, "hank", password)

        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + "/users")
        page.get_by_role("link", name="hank").click()
        # The user's projects, with their role, each linked to its page.
        rows = page.locator("#projects tbody tr")
        expect()(rows).to_have_count(2)
        expect()(rows.nth(0)).to_contain_text("team-a")
        expect()(rows.nth(0)).to_contain_text("member")
        expect()(rows.nth(1)).to_contain_text("viewer")
        link = page.locator("#projects").get_by_role("link", name="team-a")
        expect()(link).to_have_attribute("href", f"/projects/{site.projects['team-a']}")

        page.get_by_role("button", name="Disable hank").click()
        page.wait_for_url(re.compile(rf"/users/{hank_id}\?disabled=2$"))
        expect()(page.get_by_role("status")).to_have_text(
            "User disabled; 2 of their sessions and tokens were revoked."
        )
        expect()(page.locator("dl.meta")).to_contain_text("disabled")
        screenshot(page, "user-disabled")
        # hank's token and browser session are over at once; the password no longer works.
        assert _me(site, token) == 401
        hanks.goto(site.url + "/credentials")
        hanks.wait_for_url(re.compile(r"/login\?next="))
        hanks.get_by_label("User name").fill("hank")
        hanks.get_by_label("Password").fill(password)
        hanks.get_by_role("button", name="Log in").click()
        expect()(hanks.get_by_role("alert")).to_contain_text("the user hank is disabled")
        page.goto(site.url + "/users")
        expect()(page.locator("tbody tr", has_text="hank")).to_contain_text("disabled")

        page.goto(f"{site.url}/users/{hank_id}")
        page.get_by_role("button", name="Enable hank").click()
        expect()(page.get_by_role("status")).to_contain_text("User enabled")
        assert _me(site, token) == 401  # the old token stays revoked
        fresh = _api_login(site, "hank", password).json()["token"]
        assert _me(site, fresh) == 200

        page.get_by_role("link", name="Delete hank").click()
        expect()(page.get_by_role("heading", level=1)).to_have_text("Delete hank?")
        warning = page.get_by_role("alert")
        expect()(warning).to_contain_text("memberships in 2 projects")
        expect()(warning).to_contain_text("1 valid login (API tokens and browser sessions)")
        expect()(warning).to_contain_text("team-c (staging): viewer")
        screenshot(page, "user-delete")
        page.get_by_role("button", name="Delete hank").click()
        page.wait_for_url(site.url + "/users?deleted=hank")
        expect()(page.get_by_role("status")).to_contain_text("User hank deleted")
        expect()(page.locator("tbody tr", has_text="hank")).to_have_count(0)
        assert _me(site, fresh) == 401
        members = site.api.get(f"/projects/{site.projects['team-a']}/members").json()["items"]
        assert "hank" not in [m["user"] for m in members]

        for action in ("user.disable", "user.enable", "user.delete"):
            page.goto(f"{site.url}/audit?action={action}")
            expect()(page.locator("tbody tr")).to_have_count(1)
            expect()(page.locator("tbody tr")).to_contain_text("admin")
    finally:
        other.close()


def _tab_to(page: Any, text: str) -> None:
    """Press Tab until the focused control says `text`, each showing where focus is."""
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        assert focused.evaluate("e => getComputedStyle(e).outlineStyle") != "none"
        if focused.evaluate("e => e.textContent.trim()") == text:
            return
    pytest.fail(f"{text!r} was not reached with Tab")


def test_disable_and_delete_by_keyboard_alone(page: Any, site: Site) -> None:
    kim_id = _new_user(site, "kim", "kim-initial-pw-11")  # throwaway test value
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(f"{site.url}/users/{kim_id}")
    _tab_to(page, "Disable kim")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/users/{kim_id}\?disabled=0$"))
    _tab_to(page, "Delete kim…")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/users/{kim_id}/delete")
    _tab_to(page, "Delete kim")
    page.keyboard.press("Enter")
    page.wait_for_url(site.url + "/users?deleted=kim")


def test_an_admin_cannot_disable_or_delete_themselves(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/users/admin")
    expect()(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect()(page.get_by_role("button", name="Disable admin")).to_have_count(0)
    expect()(page.get_by_role("link", name="Delete admin")).to_have_count(0)
    # Asked for anyway (a crafted form, an old tab): refused in words, nothing changed.
    page.goto(site.url + "/users/admin/delete")
    expect()(page.get_by_role("button", name="Delete admin")).to_have_count(0)
    expect()(page.locator("main")).to_contain_text("You cannot delete yourself")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(site.url + "/users/admin/disable", form={"csrf": csrf})
    assert answer.status == 422
    assert "you cannot disable yourself; another admin can" in answer.text()
    assert _me(site, ADMIN_TOKEN) == 200


def test_disable_and_delete_need_the_forms_csrf_token(page: Any, site: Site) -> None:
    lee_id = _new_user(site, "lee", "lee-initial-pw-12")  # throwaway test value
    log_in(page, site, "admin", site.server.admin_password)
    for action in ("disable", "delete", "enable"):
        for token in ("", "0" * 64):
            answer = page.request.post(f"{site.url}/users/{lee_id}/{action}", form={"csrf": token})
            assert answer.status == 403, (action, answer.status)
    lee = site.api.get(f"/users/{lee_id}").json()
    assert lee["disabled"] is False


def test_admin_and_viewer_are_one_choice(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/users")
    expect()(page.locator("main").get_by_role("link", name="Projects")).to_have_attribute(
        "href", "/projects"
    )
    group = page.get_by_role("group", name="Role on the server")
    expect()(group.get_by_role("radio")).to_have_count(3)
    expect()(
        group.get_by_role("radio", name="None: only what their project roles give")
    ).to_be_checked()
    group.get_by_role("radio", name="Admin: may do everything").check()
    group.get_by_role("radio", name="Viewer: reads every object, never a secret").check()
    expect()(group.get_by_role("radio", name="Admin: may do everything")).not_to_be_checked()


def test_the_first_start_admin_changes_the_initial_password(
    page: Any, site: Site, browser: Any
) -> None:
    initial = site.server.admin_password
    other = browser.new_context()
    try:
        elsewhere = other.new_page()
        log_in(elsewhere, site, "admin", initial)

        log_in(page, site, "admin", initial)
        page.get_by_role("link", name="Change password").click()
        page.wait_for_url(site.url + "/account/password")
        form = {
            "Current password": "not-the-password",
            "New password": NEW_ADMIN_PASSWORD,
            "New password again": NEW_ADMIN_PASSWORD,
        }

        def send(**changes: str) -> None:
            for label, value in {**form, **changes}.items():
                page.get_by_label(label, exact=True).fill(value)
            page.get_by_role("button", name="Change password").click()

        send()
        expect()(page.locator("#current-error")).to_have_text("the current password is wrong")
        expect()(page.get_by_label("New password", exact=True)).to_have_value("")
        send(**{"Current password": initial, "New password again": NEW_ADMIN_PASSWORD + "x"})
        expect()(page.locator("#again-error")).to_contain_text("the two new passwords differ")
        send(
            **{
                "Current password": initial,
                "New password": "short-pw",
                "New password again": "short-pw",
            }
        )
        expect()(page.locator("#new-error")).to_have_text("a password needs at least 12 characters")
        assert initial not in page.content()
        screenshot(page, "change-password")
        send(**{"Current password": initial})
        page.wait_for_url(site.url + "/account/password?changed=1")
        expect()(page.get_by_role("status")).to_contain_text("Password changed")

        # This session goes on; the other browser's and the initial API token are revoked.
        page.goto(site.url + "/audit?action=user.password")
        expect()(page.locator("tbody tr")).to_have_count(1)
        expect()(page.locator("tbody tr")).to_contain_text("admin")
        elsewhere.goto(site.url + "/credentials")
        elsewhere.wait_for_url(re.compile(r"/login\?next="))
        assert _me(site, ADMIN_TOKEN) == 401
        assert _api_login(site, "admin", initial).status_code == 401
        assert _api_login(site, "admin", NEW_ADMIN_PASSWORD).status_code == 201
    finally:
        other.close()
