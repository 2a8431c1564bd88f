"""Forms that behave, in a real browser: Enter saves, switching provider keeps what was typed,
who may not submit a form is told before typing, reloading a form's answer is never "Method
Not Allowed", a page past the last one says so, and nothing is wider than a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Site, log_in

pytestmark = pytest.mark.integration


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_enter_in_a_field_of_the_add_form_saves_it(page: Any, site: Site) -> None:
    log_in(page, site, "alice")  # owner of team-a
    page.goto(site.url + "/credentials/new?provider=custom")
    page.get_by_label("Name", exact=True).fill("enter-saves")
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Namespace", exact=True).fill("a-web")
    page.get_by_label("Registry address").fill("enter.example.com")
    page.get_by_label("User name").fill("robot")
    page.get_by_label("Password or token").fill("enter-s3cret")
    # Enter in the password field: the form's save, not its Test login.
    page.get_by_label("Password or token").press("Enter")
    expect()(page.get_by_role("heading", level=1)).to_have_text("enter-saves active")
    assert [c["name"] for c in site.credentials("enter-saves")] == ["enter-saves"]


def test_enter_in_a_field_of_the_policy_saves_it(page: Any, site: Site) -> None:
    log_in(page, site, "alice")
    page.goto(f"{site.url}/policies?project={site.projects['team-a']}")
    page.get_by_label("Default registry").fill("enter-mirror.example.com")
    page.get_by_label("Image", exact=True).fill("redis:7")
    # Enter in the image field too saves the policy (its preview follows the typing anyway).
    page.get_by_label("Image", exact=True).press("Enter")
    expect()(page.get_by_role("status")).to_have_text("Policy saved.")
    own = site.api.get(f"/projects/{site.projects['team-a']}/policy").json()
    assert own["default_registry"] == "enter-mirror.example.com"
    r = site.api.put(f"/projects/{site.projects['team-a']}/policy", json={"default_registry": None})
    assert r.status_code == 200, r.text


def test_switching_provider_keeps_what_was_typed_but_no_secret(page: Any, site: Site) -> None:
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials/new")
    page.get_by_label("Name", exact=True).fill("switched")
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Every namespace of a project").check()
    page.get_by_label("Project", exact=True).select_option(site.projects["team-a"])
    page.get_by_label("User name").fill("robot")
    page.get_by_label("Password or token").fill("switch-s3cret")
    page.get_by_label("Email (optional)").fill("robot@example.com")
    page.get_by_label("Description (optional)").fill("typed before switching")
    page.get_by_label("Active: deliver it right away").uncheck()

    page.get_by_label("Provider", exact=True).select_option(label="Custom registry")
    expect()(page.locator("#registry-form h2")).to_have_text("Custom registry")
    expect()(page.get_by_label("Name", exact=True)).to_have_value("switched")
    expect()(page.get_by_label("Cluster", exact=True)).to_have_value("prod")
    expect()(page.get_by_label("Every namespace of a project")).to_be_checked()
    expect()(page.get_by_label("Project", exact=True)).to_have_value(site.projects["team-a"])
    expect()(page.get_by_label("User name")).to_have_value("robot")
    expect()(page.get_by_label("Email (optional)")).to_have_value("robot@example.com")
    expect()(page.get_by_label("Description (optional)")).to_have_value("typed before switching")
    expect()(page.get_by_label("Active: deliver it right away")).not_to_be_checked()
    # Docker Hub's address was not typed: the custom registry's field starts empty.
    expect()(page.get_by_label("Registry address")).to_have_value("")
    # A secret is typed again, and the address bar names only the provider.
    expect()(page.get_by_label("Password or token")).to_have_value("")
    assert page.url == site.url + "/credentials/new?provider=custom&login=password"

    # The login switch of a cloud provider keeps it all too.
    page.get_by_label("Registry address").fill("reg.example.com")
    page.get_by_label("Provider", exact=True).select_option(label="Amazon ECR")
    expect()(page.locator("#registry-form h2")).to_have_text("Amazon ECR")
    page.get_by_label("Cloud identity: the server makes short-lived tokens").check()
    expect()(page.locator("#registry-form h2")).to_have_text("Amazon ECR, with a cloud identity")
    expect()(page.get_by_label("Name", exact=True)).to_have_value("switched")
    expect()(page.get_by_label("Registry address")).to_have_value("reg.example.com")
    assert "switch-s3cret" not in page.content()


def test_a_member_is_told_before_typing_that_they_cannot_add_a_registry(
    page: Any, site: Site
) -> None:
    log_in(page, site, "bob")  # member of team-a: owns no project
    response = page.goto(site.url + "/credentials/new?provider=custom")
    assert response.status == 403
    expect()(page.locator("#may-not-create")).to_contain_text(
        "You cannot add registries: an admin or a project's owner adds them, and you own no "
        "project."
    )
    expect()(page.locator("#registry-form")).to_have_count(0)
    expect()(page.get_by_role("button", name="Save registry")).to_have_count(0)


def test_a_form_s_answer_reloaded_is_its_page_again(browser: Any, site: Site) -> None:
    """A form posted without JavaScript answers at its POST address; asking for that address
    again (a reload, the address bar) shows the form's page, not "Method Not Allowed"."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, site, "alice")
        # The policy's preview.
        page.goto(f"{site.url}/policies?project={site.projects['team-a']}")
        page.get_by_label("Image", exact=True).fill("redis:7")
        page.get_by_role("button", name="Preview").click()
        page.wait_for_url(site.url + "/policies/preview")
        expect()(page.locator("#preview-result .pulled")).to_contain_text("redis:7")
        response = page.goto(page.url)
        assert response.status == 200
        expect()(page.get_by_role("heading", level=1)).to_have_text("Policies")
        # Test login on the Add form, refused for a missing user name.
        page.goto(site.url + "/credentials/new?provider=custom")
        page.get_by_role("button", name="Test login").click()
        page.wait_for_url(site.url + "/credentials/new/test")
        response = page.goto(page.url)
        assert response.status == 200
        expect()(page.get_by_role("heading", level=1)).to_have_text("Add a registry")
        # The Deploy page's list of pull secrets, and its refused deploy.
        page.goto(site.url + "/workloads/new")
        page.get_by_role("button", name="Show the pull secrets").click()
        page.wait_for_url(site.url + "/workloads/preview")
        assert page.goto(page.url).status == 200
        expect()(page.get_by_role("heading", level=1)).to_have_text("Deploy workload")
        page.get_by_role("button", name="Deploy").click()
        page.wait_for_url(site.url + "/workloads/new")
        expect()(page.locator("#name-error")).to_be_visible()
        assert page.goto(page.url).status == 200
        expect()(page.get_by_role("heading", level=1)).to_have_text("Deploy workload")
        # A member added with no name.
        project = site.projects["team-a"]
        page.goto(f"{site.url}/projects/{project}")
        page.get_by_role("button", name="Add member").click()
        page.wait_for_url(f"{site.url}/projects/{project}/members")
        assert page.goto(page.url).status == 200
        expect()(page.get_by_role("heading", level=1)).to_have_text("team-a")
    finally:
        context.close()


def test_an_admin_s_refused_password_reset_reloaded_is_the_user_s_page(
    page: Any, site: Site
) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    users = {u["username"]: u["id"] for u in site.api.get("/users").json()["items"]}
    page.goto(f"{site.url}/users/{users['carol']}")
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Reset password").click()
    page.wait_for_url(f"{site.url}/users/{users['carol']}/password")
    expect()(page.locator("#password-error")).to_be_visible()
    assert page.goto(page.url).status == 200
    expect()(page.get_by_role("heading", level=1)).to_have_text("carol")


def test_a_page_past_the_last_one_says_so(page: Any, site: Site) -> None:
    if not site.credentials(""):  # one at least: with none, the page is the first-run guide
        site.create_credential(
            name="past-last",
            cluster="prod",
            scope="cluster",
            provider="custom",
            server="past.example.com",
            username="robot",
            password="past-last-pw-1",
        )
    log_in(page, site, "admin", site.server.admin_password)
    for path, rows in (("/audit", "event"), ("/credentials", "registr")):
        page.goto(f"{site.url}{path}?page=999")
        past = page.locator("#past-last")
        expect()(past).to_contain_text(re.compile(r"Page 999 of 1: there is nothing here"))
        expect()(page.locator("table")).to_have_count(0)
        past.get_by_role("link", name="Go to the first and only page").click()
        page.wait_for_url(site.url + path)
        expect()(page.locator(".count")).to_contain_text(rows)


def _said_once(page: Any, text: str) -> None:
    """The text is on the page exactly once."""
    assert page.locator("main").inner_text().count(text) == 1, text


def test_every_field_s_problem_is_said_at_once_next_to_it_in_words(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)  # two clusters: none is chosen
    page.goto(site.url + "/credentials/new?provider=custom")
    page.get_by_label("Name", exact=True).fill("Team_Registry")
    page.get_by_label("Registry address").fill("https://reg.example.com/v2")
    page.get_by_role("button", name="Save registry").click()
    expected = {
        "name": 'the name may have only lowercase letters, digits, "-" and ".", and must start '
        "and end with a letter or digit, such as team-registry",
        "cluster": "choose the cluster it is for",
        "namespace": "write the namespace it is delivered to",
        "server": "'https://reg.example.com/v2' is not a registry address host[:port] without "
        "scheme",
        "username": "a user name is required",
        "password": "a password or token is required",
    }
    for field, message in expected.items():
        expect()(page.locator(f"#{field}-error")).to_have_text(message)
        field_input = page.locator(f"#{field}")
        expect()(field_input).to_have_attribute("aria-invalid", "true")
        expect()(field_input).to_have_attribute("aria-describedby", re.compile(f"{field}-error"))
        _said_once(page, message)
    # The summary counts them and leads to each field by its label.
    summary = page.get_by_role("alert")
    expect()(summary).to_contain_text("This form has 6 problems, each said at its field")
    expect()(summary.get_by_role("link")).to_have_text(
        ["Name", "Cluster", "Namespace", "Registry address", "User name", "Password"]
    )
    text = page.locator("main").inner_text()
    for jargon in ("regex", "RFC 1123", "Invalid value", "Input should", "String should"):
        assert jargon not in text
    assert site.credentials("Team_Registry") == []


def test_the_users_form_says_both_problems_in_words(page: Any, site: Site) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/users")
    page.get_by_label("User name").fill("New_User")
    page.get_by_label("Initial password").fill("short")
    page.get_by_role("button", name="Add user").click()
    expect()(page.locator("#username-error")).to_have_text(
        'the user name may have only lowercase letters, digits and "-", and must start and end '
        "with a letter or digit, such as jane-doe"
    )
    expect()(page.locator("#password-error")).to_have_text(
        "a password needs at least 12 characters"
    )
    assert "regex" not in page.content()


def test_input_no_field_can_hold_is_refused_in_words(page: Any, site: Site) -> None:
    log_in(page, site, "alice")
    page.goto(f"{site.url}/policies?project={site.projects['team-a']}")
    csrf = page.locator("#policy-form input[name=csrf]").get_attribute("value")
    # The image field holds 1024 characters; a request with more is not read at all.
    r = page.request.post(
        site.url + "/policies/preview",
        form={"csrf": csrf, "project": site.projects["team-a"], "image": "a" * 2000},
        headers={"Origin": site.url, "Accept": "text/html"},
    )
    assert r.status == 422
    assert "This was not read: the image is too long: at most 1024 characters." in r.text()
    assert "String should" not in r.text()


def test_the_policy_form_says_each_rule_s_problem_once(page: Any, site: Site) -> None:
    log_in(page, site, "alice")
    page.goto(f"{site.url}/policies?project={site.projects['team-a']}")
    page.get_by_label("Default registry").fill("https://mirror.example.com")
    page.get_by_label("Allowlist").fill("quay.io\nnot a host")
    page.get_by_label("Image", exact=True).fill("redis:7")
    page.get_by_role("button", name="Save policy").click()
    registry = (
        "'https://mirror.example.com' is not a default registry: write host[:port] or "
        "host[:port]/path-prefix, without a scheme (e.g. mirror.example.com or "
        "harbor.example.com/dockerhub)"
    )
    entry = (
        "'not a host' is not an allowlist entry: write a registry host[:port], a wildcard "
        "*.example.com, or a repository subtree host[:port]/path"
    )
    expect()(page.locator("#default_registry-error")).to_have_text(registry)
    expect()(page.locator("#allowlist-error")).to_have_text(entry)
    _said_once(page, registry)
    _said_once(page, entry)
    expect()(page.get_by_label("Allowlist")).to_have_value("quay.io\nnot a host")
    own = site.api.get(f"/projects/{site.projects['team-a']}/policy").json()
    assert own["default_registry"] != "https://mirror.example.com"  # nothing was saved


def test_the_password_form_says_both_problems_at_once(page: Any, site: Site) -> None:
    log_in(page, site, "carol")
    page.goto(site.url + "/account/password")
    page.get_by_label("Current password").fill("carol-member-pw-3")
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("shorter")
    page.get_by_role("button", name="Change password").click()
    expect()(page.locator("#new-error")).to_have_text("a password needs at least 12 characters")
    expect()(page.locator("#again-error")).to_have_text(
        "the two new passwords differ; type the same one twice"
    )
    r = site.api.post("/login", json={"username": "carol", "password": "carol-member-pw-3"})
    assert r.status_code == 201, r.text


def test_the_edit_form_says_every_field_s_problem_at_once(page: Any, site: Site) -> None:
    cred = site.create_credential(
        name="edit-at-once",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="custom",
        server="edit.example.com",
        username="robot",
        password="edit-s3cret-1",
    )
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    page.get_by_label("Name", exact=True).fill("Edit At Once")
    page.get_by_label("User name").fill("robot:pw")
    page.get_by_label("Token servers on other hosts (optional)").fill("auth.example.com bad_host!")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.locator("#name-error")).to_contain_text("the name may have only lowercase")
    expect()(page.locator("#username-error")).to_contain_text(
        "a registry user name cannot contain ':'"
    )
    expect()(page.locator("#token_hosts-error")).to_contain_text("'bad_host!' is not a token host")
    expect()(page.get_by_role("alert")).to_contain_text("This form has 3 problems")
    assert site.api.get(f"/credentials/{cred['id']}").json()["name"] == "edit-at-once"
