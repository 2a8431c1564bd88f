"""The Registries pages in a real browser: log in, list, create, edit, state, delete, RBAC."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Console, Site, log_in, screenshot

pytestmark = pytest.mark.integration

QUAY_PASSWORD = "quay-s3cret-<web>&1"  # throwaway test secrets
TEAM_A_PASSWORD = "team-a-s3cret-2"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_login_rejects_a_wrong_password_and_logs_out(page: Any, site: Site) -> None:
    page.goto(site.url + "/credentials")
    # Not logged in: the login form, which comes back to the page asked for.
    page.wait_for_url(re.compile(r"/login\?next=/credentials$"))
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect()(page.get_by_role("alert")).to_have_text("wrong user name or password")
    screenshot(page, "login-error")

    log_in(page, site, "admin", site.server.admin_password)
    expect()(page.get_by_role("heading", level=1)).to_have_text("Registries")
    expect()(page.locator(".whoami")).to_contain_text("admin (admin)")
    cookie = next(c for c in page.context.cookies() if c["name"] == "pk_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain HTTP here; Secure is set behind TLS

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(site.url + "/login")
    # The session's token is revoked, not just forgotten: the old cookie no longer works.
    page.context.add_cookies([cookie])
    page.goto(site.url + "/credentials")
    page.wait_for_url(re.compile(r"/login\?next="))


def test_an_owner_without_registries_sees_the_empty_state(page: Any, site: Site) -> None:
    log_in(page, site, "dave")
    empty = page.locator(".empty")
    expect()(empty).to_contain_text("No registries yet — add one")
    empty.get_by_role("link", name="add one").click()
    page.wait_for_url(site.url + "/credentials/new")
    # A project owner may not create cluster-wide registries: the choice is not offered.
    expect()(page.get_by_label("Every namespace of the cluster")).to_have_count(0)
    expect()(page.get_by_label("Every namespace of a project")).to_have_count(1)


def test_create_shows_inline_errors_then_saves(page: Any, site: Site, console: Console) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_role("link", name="Add a registry").click()
    page.wait_for_url(site.url + "/credentials/new")

    # Choosing the provider adapts the form (htmx swaps it in place).
    page.get_by_label("Provider", exact=True).select_option(label="Amazon ECR")
    expect()(page.locator("#registry-form h2")).to_have_text("Amazon ECR")
    expect()(page.get_by_label("User name")).to_have_value("AWS")
    expect()(page.get_by_label("User name")).to_have_attribute("readonly", "")
    page.get_by_label("Name", exact=True).fill("Bad_Name")
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Namespace", exact=True).fill("a-web")
    page.get_by_label("Registry address").fill("https://ecr.example.com")
    page.get_by_role("button", name="Save registry").click()
    # The API's rules, every field's problem at once, in words, next to the field.
    expect()(page.locator("#server-error")).to_have_text(
        "'https://ecr.example.com' is not ACCOUNT.dkr.ecr.REGION.amazonaws.com"
    )
    expect()(page.get_by_label("Registry address")).to_have_attribute("aria-invalid", "true")
    expect()(page.locator("#name-error")).to_have_text(
        'the name may have only lowercase letters, digits, "-" and ".", and must start and end '
        "with a letter or digit, such as team-registry"
    )
    expect()(page.locator("#password-error")).to_have_text("a password or token is required")
    expect()(page.get_by_label("Name", exact=True)).to_have_value("Bad_Name")
    page.get_by_label("Registry address").fill("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    page.get_by_label("Password or token").fill("ecr-token")
    page.get_by_role("button", name="Save registry").click()
    expect()(page.locator("#name-error")).to_contain_text("the name may have only lowercase")
    expect()(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect()(page.locator("#server-error")).to_have_count(0)
    assert site.credentials("Bad_Name") == []

    # Quay.io: the address is fixed and shown read-only.
    page.goto(site.url + "/credentials/new?provider=quay")
    address = page.get_by_label("Registry address")
    expect()(address).to_have_value("quay.io")
    expect()(address).to_have_attribute("readonly", "")
    screenshot(page, "create-form", full_page=False)
    page.get_by_label("Name", exact=True).fill("quay-pull")
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Every namespace of a project").check()
    page.get_by_label("Project", exact=True).select_option(label="team-a")
    page.get_by_label("User name").fill("org+robot")
    page.get_by_role("button", name="Save registry").click()
    expect()(page.locator("#password-error")).to_have_text("a password or token is required")
    # The password is never sent back into the form.
    expect()(page.get_by_label("Password or token")).to_have_value("")
    screenshot(page, "create-errors")

    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Password or token").fill(QUAY_PASSWORD)
    page.get_by_label("Email (optional)").fill("robot@example.com")
    page.get_by_role("button", name="Save registry").click()
    page.wait_for_url(re.compile(r"/credentials/[0-9a-f]{32}\?created=1$"))
    expect()(page.get_by_role("status")).to_have_text("Registry created.")
    expect()(page.get_by_role("heading", level=1)).to_contain_text("quay-pull")
    expect()(page.locator("dl.meta")).to_contain_text("project team-a in prod")
    assert QUAY_PASSWORD not in page.content()

    [stored] = site.credentials("quay-pull")
    assert (stored["provider"], stored["server"], stored["username"], stored["scope"]) == (
        "quay",
        "quay.io",
        "org+robot",
        "project",
    )

    # The same name where it would land in the same namespaces is a conflict, at the name.
    page.goto(site.url + "/credentials/new?provider=quay")
    page.get_by_label("Name", exact=True).fill("quay-pull")
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Namespace", exact=True).fill("a-web")
    page.get_by_label("User name").fill("org+other")
    page.get_by_label("Password or token").fill("another-s3cret")
    page.get_by_role("button", name="Save registry").click()
    expect()(page.locator("#name-error")).to_contain_text("already lands in a namespace")
    assert console.csp_violations() == []


def test_list_filters_search_and_pages(page: Any, site: Site) -> None:
    for i in range(55):
        site.create_credential(
            name=f"bulk-{i:02d}",
            cluster="prod",
            scope="namespace",
            namespace="b-web",
            provider="custom",
            server=f"r{i:02d}.example.com",
            username="u",
            password="bulk-s3cret",
            active=i % 5 != 0,
        )
    log_in(page, site, "admin", site.server.admin_password)
    page.get_by_label("Search by name").fill("bulk-")
    # htmx filters as one types, and the URL follows (a reload keeps the filter).
    page.wait_for_url(re.compile(r"q=bulk-"))
    expect()(page.locator(".count")).to_have_text("55 registries, page 1 of 2")
    expect()(page.locator("tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Next page").click()
    expect()(page.locator("tbody tr")).to_have_count(5)
    expect()(page.locator("tbody tr").first).to_contain_text("bulk-50")
    # The links carry a cursor (keyset paging) and the page number shown.
    page.wait_for_url(re.compile(r"cursor="))
    expect()(page.locator(".count")).to_have_text("55 registries, page 2 of 2")
    expect()(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="Previous page").click()
    expect()(page.locator(".count")).to_have_text("55 registries, page 1 of 2")
    expect()(page.locator("tbody tr").first).to_contain_text("bulk-00")
    expect()(page.get_by_role("link", name="Previous page")).to_have_count(0)
    # An older link by page number still answers.
    page.goto(site.url + "/credentials?q=bulk-&page=2")
    expect()(page.locator(".count")).to_have_text("55 registries, page 2 of 2")
    expect()(page.locator("tbody tr").first).to_contain_text("bulk-50")
    # A cursor not given out by the page: said so, not a crash.
    page.goto(site.url + "/credentials?q=bulk-&page=2&cursor=nonsense")
    expect()(page.locator(".alert")).to_contain_text("leave cursor out")

    page.goto(site.url + "/credentials?q=bulk-&state=inactive")
    expect()(page.locator(".count")).to_have_text("11 registries")
    row = page.locator("tbody tr", has_text="bulk-05")
    expect()(row).to_contain_text("inactive")
    expect()(row).to_contain_text("namespace b-web in prod")
    expect()(row).to_contain_text("Custom registry")
    expect()(row).to_contain_text("r05.example.com")

    # Two for one address and scope: the newer supersedes the older; the State filter
    # uses the badges' words.
    for name in ("twin-old", "twin-new"):
        site.create_credential(
            name=name,
            cluster="prod",
            scope="namespace",
            namespace="b-web",
            provider="custom",
            server="twin.example.com",
            username="u",
            password="twin-s3cret",
        )
    page.goto(site.url + "/credentials?q=twin-")
    page.get_by_label("State").select_option("superseded")
    page.get_by_role("button", name="Filter").click()
    expect()(page.locator(".count")).to_have_text("1 registry")
    expect()(page.locator("tbody tr")).to_contain_text("twin-old")
    expect()(page.locator("tbody tr .badge")).to_have_text("superseded")
    page.get_by_label("State").select_option("active")
    page.get_by_role("button", name="Filter").click()
    expect()(page.locator(".count")).to_have_text("1 registry")
    expect()(page.locator("tbody tr")).to_contain_text("twin-new")
    expect()(page.locator("tbody tr .badge")).to_have_text("active")

    page.goto(site.url + "/credentials?q=no-such-registry")
    expect()(page.locator(".empty")).to_contain_text("No registries match these filters.")

    # Filters combine, and a bad one says what is wrong instead of failing.
    page.goto(site.url + "/credentials?namespace=b-web")
    expect()(page.get_by_role("alert")).to_have_text("filtering by namespace needs a cluster")
    page.goto(site.url + "/credentials?cluster=prod&namespace=b-web&provider=custom&q=bulk-1")
    expect()(page.locator(".count")).to_have_text("10 registries")

    # Without JavaScript the filter form is a plain GET form.
    nojs = page.context.browser.new_context(java_script_enabled=False)
    try:
        p2 = nojs.new_page()
        log_in(p2, site, "admin", site.server.admin_password)
        p2.get_by_label("Search by name").fill("bulk-3")
        p2.get_by_label("State").select_option("active")
        p2.get_by_role("button", name="Filter").click()
        expect()(p2.locator(".count")).to_have_text("8 registries")
    finally:
        nojs.close()

    page.goto(site.url + "/credentials?cluster=prod")
    screenshot(page, "registries-list", full_page=False)


def test_edit_deactivate_activate_delete(page: Any, site: Site) -> None:
    cred = site.create_credential(
        name="ghcr-pull",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="ghcr",
        username="octo",
        password="ghcr-s3cret-9",
    )
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}")
    screenshot(page, "registry-detail")
    page.get_by_role("link", name="Edit").click()

    # The address is read-only and the password field empty: it is never shown.
    expect()(page.get_by_label("Registry address")).to_have_value("ghcr.io")
    expect()(page.get_by_label("Registry address")).to_have_attribute("readonly", "")
    expect()(page.get_by_label("Password or token")).to_have_value("")
    assert "ghcr-s3cret-9" not in page.content()
    screenshot(page, "registry-edit")

    # A description changes without the password.
    page.get_by_label("Description (optional)").fill("CI pulls")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.get_by_role("status")).to_have_text("Changes saved.")
    expect()(page.locator("dl.meta")).to_contain_text("CI pulls")

    # A new user name needs the password again: the service's rule, inline.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("User name").fill("octo-2")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.locator("#password-error")).to_contain_text("needs its password or token again")
    page.get_by_label("Password or token").fill("ghcr-s3cret-10")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.locator("dl.meta")).to_contain_text("octo-2")

    page.get_by_role("button", name="Deactivate").click()
    expect()(page.locator("h1 .badge")).to_have_text("inactive")
    page.get_by_role("button", name="Activate").click()
    expect()(page.locator("h1 .badge")).to_have_text("active")
    history = page.locator(".history li")
    expect()(history).to_have_count(5)
    expect()(history.first).to_contain_text("alice: activate")
    for line in ("admin: create", "alice: update", "alice: deactivate"):
        expect()(page.locator(".history")).to_contain_text(line)

    # Deleting first says what stops working: the project's namespaces lose the Secret.
    page.get_by_role("link", name="Delete").click()
    alert = page.get_by_role("alert")
    expect()(alert).to_contain_text("removes the Secret ghcr-pull from project team-a in prod")
    expect()(alert.locator("ul.namespaces li")).to_have_text(["a-api", "a-web"])
    screenshot(page, "registry-delete")
    page.get_by_role("button", name="Delete ghcr-pull").click()
    page.wait_for_url(site.url + "/credentials?deleted=1")
    expect()(page.get_by_role("status")).to_have_text("Registry deleted.")
    assert site.api.get(f"/credentials/{cred['id']}").status_code == 404


def test_token_servers_on_other_hosts_are_trusted_per_credential(page: Any, site: Site) -> None:
    cred = site.create_credential(
        name="gitlab-pull",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="gitlab",
        server="registry.example.com",
        username="deploy",
        password="gitlab-s3cret-4",
    )
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    field = page.get_by_label("Token servers on other hosts (optional)")
    expect()(field).to_have_value("")
    field.fill("https://gitlab.example.com/jwt/auth")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.locator("#token_hosts-error")).to_contain_text("is not a token host")
    expect()(field).to_have_attribute("aria-invalid", "true")
    # Without the password again: trusting a token host is the owner's call.
    field.fill("gitlab.example.com, *.auth.example.com")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.get_by_role("status")).to_have_text("Changes saved.")
    expect()(page.locator("dl.meta")).to_contain_text("gitlab.example.com, *.auth.example.com")
    [stored] = site.credentials("gitlab-pull")
    assert stored["token_hosts"] == ["gitlab.example.com", "*.auth.example.com"]
    page.get_by_role("link", name="Edit").click()
    expect()(field).to_have_value("gitlab.example.com *.auth.example.com")


def test_members_see_no_secret_and_no_actions(page: Any, site: Site, browser: Any) -> None:
    cred = site.create_credential(
        name="team-a-pull",
        cluster="prod",
        scope="namespace",
        namespace="a-api",
        provider="custom",
        server="registry.team-a.example.com",
        username="team-a",
        password=TEAM_A_PASSWORD,
    )
    # A member of the project: sees the registry, no secret, no action.
    log_in(page, site, "bob")
    expect()(page.get_by_role("link", name="Add a registry")).to_have_count(0)
    page.get_by_label("Search by name").fill("team-a-pull")
    page.get_by_role("link", name="team-a-pull").click()
    expect()(page.get_by_role("heading", level=1)).to_contain_text("team-a-pull")
    for action in ("Edit", "Delete"):
        expect()(page.get_by_role("link", name=action)).to_have_count(0)
    expect()(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    expect()(page.locator(".history")).to_have_count(0)
    assert TEAM_A_PASSWORD not in page.content()
    screenshot(page, "registry-detail-member")
    # Asking for the edit page anyway is refused by the service.
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not allowed")

    # A member of another project does not know it exists.
    other = browser.new_context()
    try:
        p2 = other.new_page()
        log_in(p2, site, "carol")
        p2.get_by_label("Search by name").fill("team-a")
        p2.wait_for_url(re.compile(r"q=team-a"))
        expect()(p2.locator(".empty")).to_contain_text("No registries match these filters.")
        p2.goto(f"{site.url}/credentials/{cred['id']}")
        expect()(p2.get_by_role("heading", level=1)).to_have_text("Not found")
        assert "team-a-pull" not in p2.content()
    finally:
        other.close()


def test_narrow_screen_has_no_sideways_scroll(browser: Any, site: Site) -> None:
    site.create_credential(
        name="narrow-screen-with-a-long-name",
        cluster="prod",
        scope="cluster",
        provider="harbor",
        server="harbor.registry-with-a-long-address.example.com:5443",
        username="robot$narrow",
        password="narrow-s3cret",
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + "/credentials?q=narrow-screen")
        expect()(page.locator("tbody tr").first).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        screenshot(page, "registries-narrow")
    finally:
        context.close()


def test_gcr_key_as_an_uploaded_file(page: Any, site: Site) -> None:
    import json

    # A throwaway key of the right shape; the private key is not a real one.
    key = {
        "type": "service_account",
        "client_email": "puller@example-project.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n",
    }
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/credentials/new?provider=gcr")
    page.get_by_label("Name", exact=True).fill("gcr-upload")
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Namespace", exact=True).fill("a-web")
    page.get_by_label("Or upload the key file").set_input_files(
        files=[{"name": "key.json", "mimeType": "application/json", "buffer": b"{not json"}]
    )
    page.get_by_role("button", name="Save registry").click()
    expect()(page.locator("#password-error")).to_contain_text(
        "GCR needs a service-account JSON key"
    )
    assert site.credentials("gcr-upload") == []

    page.get_by_label("Or upload the key file").set_input_files(
        files=[
            {
                "name": "key.json",
                "mimeType": "application/json",
                "buffer": json.dumps(key).encode(),
            }
        ]
    )
    page.get_by_role("button", name="Save registry").click()
    page.wait_for_url(re.compile(r"/credentials/[0-9a-f]{32}\?created=1$"))
    assert "not-a-real-key" not in page.content()
    [stored] = site.credentials("gcr-upload")
    assert (stored["provider"], stored["username"]) == ("gcr", "_json_key")
    # The stored password is exactly the file's text.
    r = site.api.get(f"/credentials/{stored['id']}/dockerconfigjson")
    assert r.status_code == 200, r.text
    auths = r.json()["auths"]
    [entry] = auths.values()
    assert json.loads(entry["password"]) == key
