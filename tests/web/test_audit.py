"""The Audit page in a real browser: filters, paging, and who may read which events."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Site, log_in, screenshot

pytestmark = pytest.mark.integration

SECRET = "audit-s3cret-9"  # a throwaway test value


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def _credential(site: Site, name: str, namespace: str) -> dict[str, Any]:
    return site.create_credential(
        name=name,
        cluster="prod",
        scope="namespace",
        namespace=namespace,
        provider="custom",
        server=f"{name}.example.com",
        username="u",
        password=SECRET,
    )


def test_admin_filters_and_pages_the_audit_trail(page: Any, site: Site) -> None:
    _credential(site, "audit-a", "a-web")
    for i in range(55):
        _credential(site, f"audit-b-{i:02d}", "b-web")
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Audit", exact=True).click()
    page.wait_for_url(site.url + "/audit")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Audit")

    page.get_by_label("Action").fill("credential.create")
    page.wait_for_url(re.compile(r"action=credential.create"))
    expect()(page.locator(".count")).to_have_text("56 events, page 1 of 2")
    expect()(page.locator("tbody tr")).to_have_count(50)
    # Newest first: the last one created heads the list.
    expect()(page.locator("tbody tr").first).to_contain_text("credential audit-b-54")
    page.get_by_role("link", name="Next page").click()
    expect()(page.locator("tbody tr")).to_have_count(6)
    expect()(page.locator("tbody tr").last).to_contain_text("credential audit-a")
    page.locator("tbody tr").last.get_by_role("link").click()
    expect()(page.get_by_role("heading", level=1)).to_contain_text("audit-a")

    page.goto(site.url + "/audit?actor=alice")
    expect()(page.locator(".empty")).to_have_text("No events match these filters.")
    page.goto(site.url + "/audit?action=user.create&actor=admin")
    # The four users the fixture made through the API (the first admin is made by "system").
    expect()(page.locator(".count")).to_have_text("4 events")
    page.goto(site.url + "/audit?since=2999-01-01")
    expect()(page.locator(".empty")).to_have_text("No events match these filters.")
    page.goto(site.url + "/audit?since=yesterday")
    expect()(page.get_by_role("alert")).to_contain_text("'yesterday' is not a date")
    page.goto(site.url + "/audit?action=credential.create&since=2000-01-01")
    expect()(page.locator(".count")).to_contain_text("56 events")
    screenshot(page, "audit", full_page=False)
    assert SECRET not in page.content()


def test_an_owner_reads_their_projects_events_only(page: Any, site: Site) -> None:
    _credential(site, "owner-a", "a-api")
    _credential(site, "owner-b", "b-web")
    log_in(page, site, "alice")  # owner of team-a
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_label("Action").fill("credential.create")
    page.wait_for_url(re.compile(r"action=credential.create"))
    expect()(page.locator("#results")).to_contain_text("credential owner-a")
    expect()(page.locator("#results")).not_to_contain_text("owner-b")
    # Without JavaScript the filters are a plain GET form.
    nojs = page.context.browser.new_context(java_script_enabled=False)
    try:
        p2 = nojs.new_page()
        log_in(p2, site, "alice")
        p2.goto(site.url + "/audit")
        p2.get_by_label("User").fill("alice")
        p2.get_by_role("button", name="Filter").click()
        expect()(p2.locator("tbody tr").first).to_contain_text("token.create")
        expect()(p2.locator("tbody tr").nth(1)).to_contain_text("user.login")
    finally:
        nojs.close()


def test_members_see_only_their_own_events(page: Any, site: Site) -> None:
    """As the API answers them: a member reads what they did, nothing of the project's."""
    log_in(page, site, "bob")  # member of team-a
    page.get_by_role("link", name="Audit", exact=True).click()
    expect()(page.get_by_role("heading", level=1)).to_have_text("Audit")
    expect()(page.locator("p.hint").first).to_contain_text("Your own events")
    rows = page.locator("tbody tr")
    expect()(rows.first).to_be_visible()
    actors = page.locator("tbody td[data-label='User']").all_inner_texts()
    assert actors and set(actors) == {"bob"}, actors
