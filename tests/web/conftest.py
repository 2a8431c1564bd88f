"""A real `pullkeeper serve` and a real headless Chromium driving its web pages.

The store is set up through the REST API as an admin (clusters, projects,
namespaces, users); everything a test checks is done through the pages.
Screenshots go to test-artifacts/ at the top of the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_cli_server import ADMIN_TOKEN, Server, start_server
from tests.tools import missing

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Throwaway test logins.
PASSWORDS = {
    "alice": "alice-owner-pw-1",  # owner of team-a (cluster prod)
    "bob": "bob-member-pw-2",  # member of team-a
    "carol": "carol-member-pw-3",  # member of team-b (cluster prod)
    "dave": "dave-owner-pw-4",  # owner of team-c (cluster staging), which has no registries
}


def _require_browser() -> None:
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} (Debian packages chromium and chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the Python package playwright (pip install -e '.[test]')")


@dataclass
class Site:
    """The running server, an admin API client, and the ids of what was set up."""

    server: Server
    api: httpx.Client
    projects: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def create_credential(self, **body: Any) -> dict[str, Any]:
        r = self.api.post("/credentials", json=body)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    def credentials(self, q: str) -> list[dict[str, Any]]:
        r = self.api.get("/credentials", params={"q": q, "limit": 500})
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


@contextmanager
def open_site(base: Path, settings: Mapping[str, str] | None = None) -> Iterator[Site]:
    """A started server with the clusters, projects, namespaces and users below, stopped after.

    Whatever is put into base/"data" beforehand (e.g. certs.d) is the server's; `settings`
    are PULLKEEPER_* variables of its environment.
    """
    server = start_server(base, settings=settings)
    api = httpx.Client(
        base_url=server.url + "/api/v1",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        trust_env=False,
        timeout=30,
    )
    try:
        for cluster in ("prod", "staging"):
            _ok(api.post("/clusters", json={"name": cluster}))
        projects = {}
        for name, cluster in (("team-a", "prod"), ("team-b", "prod"), ("team-c", "staging")):
            projects[name] = _ok(api.post("/projects", json={"name": name, "cluster": cluster}))[
                "id"
            ]
        for ns, project, cluster in (
            ("a-web", "team-a", "prod"),
            ("a-api", "team-a", "prod"),
            ("b-web", "team-b", "prod"),
            ("c-web", "team-c", "staging"),
        ):
            _ok(
                api.put(f"/clusters/{cluster}/namespaces/{ns}", json={"project": projects[project]})
            )
        for user, password in PASSWORDS.items():
            _ok(api.post("/users", json={"username": user, "password": password}))
        for user, project, role in (
            ("alice", "team-a", "owner"),
            ("bob", "team-a", "member"),
            ("carol", "team-b", "member"),
            ("dave", "team-c", "owner"),
        ):
            _ok(api.put(f"/projects/{projects[project]}/members/{user}", json={"role": role}))
        yield Site(server, api, projects)
    finally:
        api.close()
        server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _require_browser()
    with open_site(tmp_path_factory.mktemp("web")) as s:
        yield s


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Messages the page logged: a CSP violation shows up here."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    from playwright.sync_api import expect

    # Generous waits: the suite runs on two workers of a small shared machine, where a page
    # that answers in 2 s alone may take several times that; a broken page still fails.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    expect.set_options(timeout=15_000)
    p = context.new_page()
    p.on("console", lambda m: console.messages.append(m.text))
    try:
        yield p
    finally:
        context.close()


def log_in(page: Any, site: Site, user: str, password: str | None = None) -> None:
    page.goto(site.url + "/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password or PASSWORDS[user])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.url + "/credentials")


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Any) -> list[str]:
    """What axe-core finds against WCAG 2.1 A/AA on the page as it is now, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
    found = []
    for v in results.response["violations"]:
        where = "; ".join(" ".join(n["target"]) for n in v["nodes"][:3])
        found.append(f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {where}")
    return found
