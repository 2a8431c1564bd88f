"""A new installation, started from the browser alone: the Registries page leads an admin
through cluster, project and first registry, one form each, each step back to the guide with
the next one marked; a user who is no admin is told whom to ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_cli_server import ADMIN_TOKEN, Server, start_server
from tests.web.conftest import violations

pytestmark = pytest.mark.integration


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, httpx.Client]]:
    """A server with nothing set up but its first admin, and one user of no project."""
    server = start_server(tmp_path_factory.mktemp("first-run"))
    api = httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        trust_env=False,
        timeout=30,
    )
    made = api.post("/users", json={"username": "erin", "password": "erin-newbie-pw-5"})
    assert made.status_code == 201, made.text
    try:
        yield server, api
    finally:
        api.close()
        server.stop()


def _log_in(page: Any, url: str, user: str, password: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/credentials")


def _current_step(page: Any) -> Any:
    return page.locator('#first-run li[aria-current="step"]')


def test_a_user_who_is_no_admin_is_told_whom_to_ask(
    page: Any, empty: tuple[Server, httpx.Client]
) -> None:
    server, api = empty
    # An admin who is disabled is nobody to ask.
    olaf = api.post(
        "/users", json={"username": "olaf", "password": "olaf-admin-pw-7", "admin": True}
    )
    assert olaf.status_code == 201, olaf.text
    assert api.post(f"/users/{olaf.json()['id']}/disable").status_code == 200
    _log_in(page, server.url, "erin", "erin-newbie-pw-5")
    guide = page.locator("#first-run")
    expect()(guide).to_contain_text("Nothing is set up yet")
    expect()(guide).to_contain_text("ask admin")
    expect()(guide).not_to_contain_text("olaf")
    expect()(guide.get_by_role("link")).to_have_count(0)
    assert violations(page) == []


def test_an_admin_is_led_from_cluster_to_project_to_registry(
    page: Any, empty: tuple[Server, httpx.Client], tmp_path: Path
) -> None:
    server, api = empty
    _log_in(page, server.url, "admin", server.admin_password)
    expect()(_current_step(page)).to_contain_text("Add a cluster")
    assert violations(page) == []

    _current_step(page).get_by_role("link", name="Add a cluster").click()
    expect()(page.get_by_text("Step 1 of 3")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("first")
    page.get_by_label("In-cluster").check()
    page.get_by_role("button", name="Save cluster").click()
    page.wait_for_url(server.url + "/credentials")
    expect()(_current_step(page)).to_contain_text("Add a project")
    expect()(page.locator("#first-run li.done")).to_contain_text("Add a cluster")

    _current_step(page).get_by_role("link", name="Add a project").click()
    expect()(page.get_by_text("Step 2 of 3")).to_be_visible()
    assert violations(page) == []
    page.get_by_role("button", name="Save project").click()  # no name yet
    expect()(page.locator("#name-error")).to_have_text(
        "the name is required: a lowercase DNS label such as team-a"
    )
    page.get_by_label("Name", exact=True).fill("web")
    expect()(page.get_by_label("Cluster")).to_have_value("first")
    page.get_by_role("button", name="Save project").click()
    page.wait_for_url(server.url + "/credentials")
    expect()(_current_step(page)).to_contain_text("Add the first registry")
    projects = api.get("/projects").json()["items"]
    assert [(p["name"], p["cluster"]) for p in projects] == [("web", "first")]

    _current_step(page).get_by_role("link", name="Add the first registry").click()
    page.wait_for_url(server.url + "/credentials/new")
    page.get_by_label("Name", exact=True).fill("hub")
    page.get_by_label("Every namespace of a project").check()
    page.locator("#project").select_option(label="web")
    page.get_by_label("User name").fill("bot")
    page.locator("#password").fill("hub-s3cret")
    page.get_by_role("button", name="Save registry").click()
    page.wait_for_url("**/credentials/*?created=1")
    page.goto(server.url + "/credentials")
    expect()(page.locator("#first-run")).to_have_count(0)
    expect()(page.locator("#results table")).to_contain_text("hub")
    actions = {e["action"] for e in api.get("/audit").json()["items"]}
    assert {"cluster.create", "project.create", "credential.create"} <= actions
