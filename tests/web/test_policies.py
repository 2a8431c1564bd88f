"""The Policies page in a real browser: set a policy, preview images with htmx and without JS."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Console, Site, log_in, screenshot, violations

pytestmark = pytest.mark.integration


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_set_a_cluster_policy_and_preview_images(page: Any, site: Site, console: Console) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Policies").click()
    expect()(page.locator(".empty")).to_contain_text("Choose a cluster or a project")
    page.get_by_label("Cluster").select_option("prod")
    page.get_by_role("button", name="Show policy").click()
    expect()(page.get_by_role("heading", level=2)).to_have_text("Cluster prod")

    # A bad value is refused inline with the API's message.
    page.get_by_label("Default registry").fill("https://mirror.example.com")
    page.get_by_role("button", name="Save policy").click()
    expect()(page.locator("#default_registry-error")).to_contain_text(
        "is not a default registry: write host[:port]"
    )

    page.get_by_label("Default registry").fill("mirror.example.com/hub")
    page.get_by_label("Allowlist").fill("mirror.example.com\nquay.io/acme")
    page.get_by_label("Forbid latest").select_option("Yes")
    page.get_by_label("Mode").select_option("enforce")

    # The preview follows the unsaved form as one types (htmx), in the webhook's words.
    image = page.get_by_label("Image", exact=True)
    result = page.locator("#preview-result")
    image.fill("nginx")
    expect()(result.locator(".pulled")).to_have_text("mirror.example.com/hub/library/nginx")
    expect()(result).to_contain_text("Rewritten to")
    expect()(result.locator(".decision")).to_contain_text("Denied")
    expect()(result).to_contain_text("has no tag (that is latest); the policy forbids it")
    image.fill("nginx:1.27")
    expect()(result.locator(".decision")).to_have_text(
        "Allowed: the policy has nothing against it."
    )
    image.fill("ghcr.io/acme/app:1")
    expect()(result).to_contain_text("Not rewritten")
    expect()(result).to_contain_text("comes from ghcr.io, which is not on the allowlist")
    # Changing a rule re-judges the image: warn admits it with a warning.
    page.get_by_label("Mode").select_option("warn")
    expect()(result.locator(".decision")).to_contain_text("Allowed with a warning")
    page.get_by_label("Mode").select_option("enforce")
    expect()(result.locator(".decision")).to_contain_text("Denied")
    screenshot(page, "policies-preview")
    assert violations(page) == []  # WCAG 2.1 A/AA, results shown

    page.get_by_role("button", name="Save policy").click()
    page.wait_for_url(re.compile(r"/policies\?cluster=prod&saved=1$"))
    expect()(page.get_by_role("status")).to_have_text("Policy saved.")
    expect()(page.get_by_label("Default registry")).to_have_value("mirror.example.com/hub")
    expect()(page.get_by_label("Allowlist")).to_have_value("mirror.example.com\nquay.io/acme")
    # Unqualified images go to the default registry, which the allowlist admits: nothing to
    # warn about (the API says the same).
    expect()(page.locator(".warning")).to_have_count(0)
    assert site.api.get("/clusters/prod/policy").json()["warnings"] == []
    saved = site.api.get("/clusters/prod/policy").json()
    assert (saved["default_registry"], saved["allowlist"], saved["forbid_latest"]) == (
        "mirror.example.com/hub",
        ["mirror.example.com", "quay.io/acme"],
        True,
    )
    assert saved["mode"] == "enforce"
    assert console.csp_violations() == []


def test_project_policy_inherits_and_preview_works_without_javascript(
    browser: Any, site: Site
) -> None:
    r = site.api.put(
        "/clusters/prod/policy", json={"default_registry": "cluster-mirror.example.com"}
    )
    assert r.status_code == 200, r.text
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, site, "alice")  # owner of team-a
        page.goto(f"{site.url}/policies?project={site.projects['team-a']}")
        expect()(page.get_by_role("heading", level=2)).to_have_text("Project team-a in prod")
        expect()(page.locator("#default_registry-hint")).to_contain_text(
            "Cluster: cluster-mirror.example.com."
        )
        # Without JavaScript, Preview is a plain form POST and the page comes back with it.
        page.get_by_label("Require a digest").select_option("Yes")
        page.get_by_label("Image", exact=True).fill("redis:7")
        page.get_by_role("button", name="Preview").click()
        result = page.locator("#preview-result")
        expect()(result.locator(".pulled")).to_have_text(
            "cluster-mirror.example.com/library/redis:7"
        )
        expect()(result).to_contain_text("has no digest; the policy requires one")
        # The form keeps what was typed, unsaved.
        expect()(page.get_by_label("Require a digest")).to_have_value("yes")
        page.get_by_role("button", name="Save policy").click()
        expect()(page.get_by_role("status")).to_have_text("Policy saved.")
        own = site.api.get(f"/projects/{site.projects['team-a']}/policy").json()
        assert (own["require_digest"], own["default_registry"]) == (True, None)
    finally:
        context.close()


def test_a_member_can_preview_but_not_save(page: Any, site: Site) -> None:
    log_in(page, site, "bob")  # member of team-a
    page.goto(f"{site.url}/policies?project={site.projects['team-a']}")
    expect()(page.get_by_role("heading", level=2)).to_have_text("Project team-a in prod")
    expect()(page.get_by_role("button", name="Save policy")).to_have_count(0)
    page.get_by_label("Image", exact=True).fill("busybox:1.36")
    expect()(page.locator("#preview-result .pulled")).to_contain_text("busybox:1.36")
    # A member of another project does not see team-a's policy.
    page.goto(f"{site.url}/policies?project={site.projects['team-c']}")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not found")
