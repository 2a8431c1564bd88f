"""Registries holding a cloud identity in a real browser: the Add form's login choice and
identity fields (with and without JavaScript), a refusal shown at the field it names, the
token badge in each state on the list and the detail page, a new identity on the edit page,
and the axe audit of all of it at desktop and phone width.

The server's ECR exchanges go to AWS on loopback (tests/cloud/aws.py, moto). Its refresher
is off: the alert and expired states are made by writing the token columns of the
credential's row in the store, as the refresher would leave them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from pullkeeper.store.models import Credential
from tests.cloud import aws
from tests.cloud.aws import Aws
from tests.web.conftest import Console, Site, _require_browser, log_in, open_site, violations

pytestmark = pytest.mark.integration

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
KEY_ID = "AKIAPULLER0000000001"
SECRET_KEY = "web-puller-secret-access-key-0123"  # throwaway; moto takes any key
UNKNOWN_KEY_ID = "AKIAUNKNOWN000000000"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture(scope="module")
def cloud() -> Iterator[Aws]:
    with aws.serve(limit=1800) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def site(cloud: Aws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _require_browser()
    settings = {"PULLKEEPER_CLOUD_AWS_ENDPOINT": cloud.url, "PULLKEEPER_TOKEN_REFRESH": "false"}
    with open_site(tmp_path_factory.mktemp("webcloud"), settings) as s:
        yield s


def ecr_credential(site: Site, name: str) -> dict[str, Any]:
    return site.create_credential(
        name=name,
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="ecr",
        server=ECR,
        identity={"kind": "aws", "access_key_id": KEY_ID, "secret": SECRET_KEY},
    )


def set_token(site: Site, cred_id: str, **columns: Any) -> None:
    """The token columns of the credential's row written in the store; then a change through
    the API, so that no listing kept from before is shown."""
    engine = create_engine(f"sqlite:///{site.server.data / 'pullkeeper.db'}")
    try:
        with Session(engine) as s, s.begin():
            s.execute(update(Credential).where(Credential.id == cred_id).values(**columns))
    finally:
        engine.dispose()
    r = site.api.patch(f"/credentials/{cred_id}", json={"description": f"now {columns}"[:100]})
    assert r.status_code == 200, r.text


def alert(site: Site, cred_id: str) -> None:
    """The last refreshes failed and less than a quarter of the token's life is left."""
    now = datetime.now(UTC)
    set_token(
        site,
        cred_id,
        token_issued_at=now - timedelta(hours=10),
        token_expires_at=now + timedelta(hours=2, minutes=1),
        token_refresh_at=now + timedelta(minutes=5),
        token_failures=4,
        token_error_cause="denied",
        token_error="AWS refused: grant the key ecr:GetAuthorizationToken",
    )


def expired(site: Site, cred_id: str) -> None:
    now = datetime.now(UTC)
    set_token(
        site,
        cred_id,
        token_issued_at=now - timedelta(hours=13),
        token_expires_at=now - timedelta(hours=1),
        token_refresh_at=now + timedelta(minutes=5),
        token_failures=9,
        token_error_cause="unreachable",
        token_error="no answer from ECR; tried again later",
    )


def fill_where(page: Any, name: str) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Cluster", exact=True).select_option("prod")
    page.get_by_label("Namespace", exact=True).fill("a-web")
    page.get_by_label("Registry address").fill(ECR)


def test_add_an_ecr_registry_with_a_cloud_identity(
    page: Any, site: Site, cloud: Aws, console: Console
) -> None:
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/credentials/new")
    page.get_by_label("Provider", exact=True).select_option(label="Amazon ECR")
    # The login choice comes with the provider (htmx swaps it in with the form).
    expect()(page.get_by_label("Password or token")).to_be_visible()
    page.get_by_label("Cloud identity: the server makes short-lived tokens").check()
    expect()(page.locator("#registry-form h2")).to_have_text("Amazon ECR, with a cloud identity")
    expect()(page.get_by_label("Password or token")).to_have_count(0)
    expect()(page.get_by_role("button", name="Test login")).to_have_count(0)
    expect()(page.get_by_label("Secret access key")).to_have_attribute("type", "password")

    # A key AWS does not know: the cloud's refusal, in words, at the identity.
    fill_where(page, "ecr-web")
    page.get_by_label("Access key id").fill(UNKNOWN_KEY_ID)
    page.get_by_label("Secret access key").fill(SECRET_KEY)
    with cloud.enforcing_iam():
        page.get_by_role("button", name="Save registry").click()
        expect()(page.locator("#identity-error")).to_contain_text(
            "no registry login could be made from the aws identity (invalid)"
        )
    expect()(page.locator("#identity")).to_have_attribute("aria-invalid", "true")
    expect()(page.get_by_label("Access key id")).to_have_value(UNKNOWN_KEY_ID)
    # The secret is never sent back: it is typed again.
    expect()(page.get_by_label("Secret access key")).to_have_value("")
    assert SECRET_KEY not in page.content()
    assert site.credentials("ecr-web") == []

    # A field the server checks before calling AWS: named, next to that field.
    page.get_by_label("Access key id").fill(KEY_ID)
    page.get_by_label("Secret access key").fill(SECRET_KEY)
    page.get_by_label("Role to assume (optional)").fill("arn:aws:iam::1:role/x")
    page.get_by_role("button", name="Save registry").click()
    expect()(page.locator("#role_arn-error")).to_contain_text("12-digit account")
    expect()(page.get_by_label("Role to assume (optional)")).to_have_attribute(
        "aria-invalid", "true"
    )
    expect()(page.locator(".alert a[href='#role_arn']")).to_have_count(1)

    page.get_by_label("Role to assume (optional)").fill("")
    page.get_by_label("Secret access key").fill(SECRET_KEY)
    page.get_by_role("button", name="Save registry").click()
    page.wait_for_url(re.compile(r"/credentials/[0-9a-f]{32}\?created=1$"))
    meta = page.locator("dl.meta")
    expect()(meta).to_contain_text(f"AWS: access key id {KEY_ID}")
    expect()(page.locator("#token-state .badge.token-valid")).to_have_text(
        re.compile(r"^token valid, expires in 11h 5\dm$")
    )
    expect()(meta).to_contain_text(re.compile(r"Expires\s*\S+ \S+ UTC \(in 11h 5\dm\)"))
    expect()(meta).to_contain_text(re.compile(r"Next refresh\s*\S+ \S+ UTC \(in [45]h \d+m\)"))
    expect()(meta).to_contain_text(
        re.compile(r"Last refresh\s*\S+ \S+ UTC \((under a minute|\dm) ago\)")
    )
    expect()(page.locator("#token-error")).to_have_count(0)
    assert SECRET_KEY not in page.content() and cloud.issued[-1] not in page.content()
    [made] = site.credentials("ecr-web")
    assert made["identity"]["access_key_id"] == KEY_ID and made["username"] == "AWS"
    assert console.csp_violations() == []


def test_the_identity_form_works_without_javascript(browser: Any, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + "/credentials/new")
        page.get_by_label("Provider", exact=True).select_option(label="Amazon ECR")
        page.get_by_role("button", name="Use this provider").click()
        page.get_by_label("Cloud identity: the server makes short-lived tokens").check()
        page.get_by_role("button", name="Use this login").click()
        page.wait_for_url(re.compile(r"/credentials/new\?provider=ecr&login=identity$"))
        fill_where(page, "ecr-nojs")
        page.get_by_label("Access key id").fill(KEY_ID)
        page.get_by_label("Secret access key").fill(SECRET_KEY)
        page.get_by_role("button", name="Save registry").click()
        page.wait_for_url(re.compile(r"/credentials/[0-9a-f]{32}\?created=1$"))
        expect()(page.locator("#token-state")).to_contain_text("token valid")
    finally:
        context.close()


def test_the_badge_says_each_token_state_in_words(page: Any, site: Site) -> None:
    valid, alerting, gone = (ecr_credential(site, f"ecr-badge-{n}") for n in ("1", "2", "3"))
    alert(site, alerting["id"])
    expired(site, gone["id"])
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials?q=ecr-badge")
    rows = page.locator("#results tbody tr")
    expect()(rows).to_have_count(3)
    expect()(rows.nth(0).locator(".badge.token-valid")).to_have_text(
        re.compile(r"^token valid, expires in 11h 5\dm$")
    )
    expect()(rows.nth(1).locator(".badge.token-alert")).to_have_text(
        re.compile(r"^refresh failing: denied, expires in 2h( 0m| 1m)?$")
    )
    expect()(rows.nth(2).locator(".badge.token-expired")).to_have_text("token expired")
    # A static login has no token badge.
    static = site.create_credential(
        name="ecr-badge-static",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="ecr",
        server=ECR,
        username="AWS",
        password="static-ecr-password-1",
    )
    page.goto(site.url + "/credentials?q=ecr-badge-static")
    expect()(page.locator("#results tbody tr")).to_have_count(1)
    expect()(page.locator("#results .badge[class*='token-']")).to_have_count(0)
    page.goto(f"{site.url}/credentials/{static['id']}")
    expect()(page.locator("dl.meta")).to_contain_text("stored encrypted; never shown")

    # The detail page: the last error's message, how many refreshes failed, the times.
    page.goto(f"{site.url}/credentials/{alerting['id']}")
    expect()(page.locator("#token-state")).to_have_text(re.compile("^refresh failing: denied"))
    expect()(page.locator("#token-error")).to_have_text(
        "denied: AWS refused: grant the key ecr:GetAuthorizationToken"
    )
    meta = page.locator("dl.meta")
    expect()(meta).to_contain_text("4 in a row")
    expect()(meta).to_contain_text(re.compile(r"Last refresh\s*\S+ \S+ UTC \(10h( 0m)? ago\)"))
    expect()(meta).to_contain_text(re.compile(r"Next refresh\s*\S+ \S+ UTC \(in [45]m\)"))
    page.goto(f"{site.url}/credentials/{gone['id']}")
    expect()(page.locator("#token-state .badge.token-expired")).to_have_text("token expired")
    expect()(page.locator("#token-error")).to_contain_text("unreachable: no answer from ECR")
    expect()(meta).to_contain_text(re.compile(r"Expires\s*\S+ \S+ UTC \(1h( 0m)? ago\)"))
    page.goto(f"{site.url}/credentials/{valid['id']}")
    expect()(page.locator("#token-error")).to_have_count(0)
    expect()(meta).not_to_contain_text("in a row")


def test_edit_gives_a_new_identity_whole(page: Any, site: Site, cloud: Aws) -> None:
    cred = ecr_credential(site, "ecr-edit")
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    # The login is the identity's: no password to type, the user name is the tokens'.
    expect()(page.get_by_label("Password or token")).to_have_count(0)
    expect()(page.get_by_label("User name")).to_have_attribute("readonly", "")
    expect()(page.get_by_role("heading", name="Give a new identity")).to_be_visible()
    # Its shown fields as saved, its secret never.
    expect()(page.get_by_label("Access key id")).to_have_value(KEY_ID)
    expect()(page.get_by_label("Secret access key")).to_have_value("")

    # Unticked, the identity is kept.
    page.get_by_label("Description (optional)").fill("kept identity")
    page.get_by_role("button", name="Save changes").click()
    expect()(page.get_by_role("status")).to_have_text("Changes saved.")
    before = len(cloud.issued)

    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("Replace the identity with this one").check()
    other = "AKIAPULLER0000000002"
    page.get_by_label("Access key id").fill(other)
    page.get_by_role("button", name="Save changes").click()
    # Whole: its secret again.
    expect()(page.locator("#secret_access_key-error")).to_contain_text("secret is required")
    expect()(page.get_by_label("Replace the identity with this one")).to_be_checked()
    expect()(page.get_by_label("Access key id")).to_have_value(other)
    page.get_by_label("Secret access key").fill(SECRET_KEY)
    page.get_by_role("button", name="Save changes").click()
    expect()(page.get_by_role("status")).to_have_text("Changes saved.")
    expect()(page.locator("dl.meta")).to_contain_text(f"access key id {other}")
    assert len(cloud.issued) == before + 1
    assert SECRET_KEY not in page.content()


def test_a_static_ecr_registry_may_be_given_an_identity(page: Any, site: Site) -> None:
    cred = site.create_credential(
        name="ecr-to-cloud",
        cluster="prod",
        scope="project",
        project=site.projects["team-a"],
        provider="ecr",
        server=ECR,
        username="AWS",
        password="static-ecr-password-2",
    )
    log_in(page, site, "alice")
    page.goto(f"{site.url}/credentials/{cred['id']}/edit")
    page.get_by_label("Use this cloud identity").check()
    page.get_by_label("Access key id").fill(KEY_ID)
    page.get_by_label("Secret access key").fill(SECRET_KEY)
    page.get_by_role("button", name="Save changes").click()
    expect()(page.get_by_role("status")).to_have_text("Changes saved.")
    expect()(page.locator("#token-state")).to_contain_text("token valid")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_cloud_pages_pass_axe(browser: Any, site: Site, cloud: Aws, width: int) -> None:
    creds = [ecr_credential(site, f"ecr-a11y-{width}-{n}") for n in ("valid", "alert", "gone")]
    alert(site, creds[1]["id"])
    expired(site, creds[2]["id"])
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        found: list[str] = []
        paths = [
            f"/credentials?q=ecr-a11y-{width}",
            *(f"/credentials/{c['id']}" for c in creds),
            f"/credentials/{creds[1]['id']}/edit",
            "/credentials/new?provider=ecr",
            "/credentials/new?provider=ecr&login=identity",
            "/credentials/new?provider=gcr&login=identity",
            "/credentials/new?provider=acr&login=identity",
        ]
        for path in paths:
            page.goto(site.url + path)
            found += violations(page)
        # With the cloud's refusal and a field's error shown.
        page.goto(site.url + "/credentials/new?provider=ecr&login=identity")
        fill_where(page, f"ecr-a11y-{width}-refused")
        page.get_by_label("Access key id").fill(UNKNOWN_KEY_ID)
        page.get_by_label("Secret access key").fill(SECRET_KEY)
        with cloud.enforcing_iam():
            page.get_by_role("button", name="Save registry").click()
            expect()(page.locator("#identity-error")).to_be_visible()
        found += violations(page)
        page.goto(site.url + "/credentials/new?provider=acr&login=identity")
        page.get_by_role("button", name="Save registry").click()
        expect()(page.locator(".field-error").first).to_be_visible()
        found += violations(page)
        if width < 500:
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            # What sticks out, to say in the failure.
            wide = page.evaluate(
                "[...document.querySelectorAll('*')]"
                ".filter(e => e.getBoundingClientRect().right"
                " > document.documentElement.clientWidth)"
                ".map(e => e.tagName + '#' + e.id)"
            )
            assert overflow <= 0, wide
    finally:
        context.close()
    assert found == []
