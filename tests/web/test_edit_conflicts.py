"""Edit forms in a real browser: a change saved by someone else meanwhile is never overwritten.

Alice opens an edit form; while it is open, someone else saves a change to the same object
through the API; then Alice saves. The lost update would be her form silently writing its
stale fields over that change. Instead the form comes back with her input, says what
happened and what is saved now, and only a second, knowing save replaces it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Console, Site, log_in, screenshot, violations

pytestmark = pytest.mark.integration


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_a_registry_changed_meanwhile_is_not_overwritten(
    page: Any, site: Site, console: Console
) -> None:
    cred = site.create_credential(
        name="quay-team-a",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="quay",
        username="acme+bot",
        password="quay-s3cret-conflict-1",
        description="robot for CI",
    )
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    page.get_by_label("Description (optional)").fill("robot for CI and releases")

    # Meanwhile the admin renames it, through the API.
    renamed = site.api.patch(f"/credentials/{cred['id']}", json={"name": "quay-ci"})
    assert renamed.status_code == 200, renamed.text

    page.get_by_role("button", name="Save changes").click()
    conflict = page.locator("#conflict")
    expect()(conflict).to_contain_text("Someone else changed this registry while you were editing")
    expect()(conflict).to_contain_text("your changes were not saved")
    # What is saved now, where her form differs: the stale name she never touched.
    expect()(conflict.locator("dl.differs dt")).to_have_text(["Name", "Description"])
    expect()(conflict.locator("dl.differs dd")).to_have_text(
        ["saved now: quay-ci", "saved now: robot for CI"]
    )
    # Her input is all still there.
    expect()(page.get_by_label("Description (optional)")).to_have_value("robot for CI and releases")
    expect()(page.get_by_label("Name", exact=True)).to_have_value("quay-team-a")
    screenshot(page, "registry-edit-conflict")
    assert violations(page) == []
    # The rename stays: nothing of the stale form was written.
    now = site.api.get(f"/credentials/{cred['id']}").json()
    assert (now["name"], now["description"]) == ("quay-ci", "robot for CI")

    # She keeps the new name and saves again: her description goes in, knowingly.
    page.get_by_label("Name", exact=True).fill("quay-ci")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.get_by_role("status")).to_have_text("Changes saved.")
    now = site.api.get(f"/credentials/{cred['id']}").json()
    assert (now["name"], now["description"]) == ("quay-ci", "robot for CI and releases")
    assert console.csp_violations() == []


def test_an_unchanged_form_after_an_error_keeps_its_version(page: Any, site: Site) -> None:
    """A form shown again for a bad value still carries the version it started from."""
    cred = site.create_credential(
        name="hub-team-a",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="dockerhub",
        username="acme",
        password="hub-s3cret-conflict-2",
    )
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    page.get_by_label("Name", exact=True).fill("Not A Name")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.locator("#name-error")).to_contain_text("the name may have only lowercase")
    changed = site.api.patch(f"/credentials/{cred['id']}", json={"description": "by the admin"})
    assert changed.status_code == 200, changed.text
    page.get_by_label("Name", exact=True).fill("hub-ci")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.locator("#conflict")).to_contain_text("Someone else changed this registry")
    assert site.api.get(f"/credentials/{cred['id']}").json()["name"] == "hub-team-a"


def test_a_policy_changed_meanwhile_is_not_overwritten(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(f"{site.url}/policies?cluster=staging")
    page.get_by_label("Allowlist").fill("quay.io\nghcr.io")

    # Meanwhile someone else sets the mode, through the API.
    put = site.api.put("/clusters/staging/policy", json={"mode": "warn"})
    assert put.status_code == 200, put.text

    page.get_by_role("button", name="Save policy").click()
    conflict = page.locator("#conflict")
    expect()(conflict).to_contain_text("Someone else changed this policy while you were editing")
    expect()(conflict.locator("dl.differs dt")).to_have_text(["Allowlist", "Mode"])
    expect()(conflict.locator("dl.differs dd")).to_have_text(
        ["saved now: unset", "saved now: warn"]
    )
    expect()(page.get_by_label("Allowlist")).to_have_value("quay.io\nghcr.io")
    screenshot(page, "policy-conflict")
    assert violations(page) == []
    policy = site.api.get("/clusters/staging/policy").json()
    assert (policy["allowlist"], policy["mode"]) == (None, "warn")

    # Saved again, the form replaces what is there, mode included: a knowing choice.
    page.get_by_label("Mode").select_option("warn")
    page.get_by_role("button", name="Save policy").click()
    expect()(page.get_by_role("status")).to_have_text("Policy saved.")
    policy = site.api.get("/clusters/staging/policy").json()
    assert (policy["allowlist"], policy["mode"]) == (["quay.io", "ghcr.io"], "warn")
