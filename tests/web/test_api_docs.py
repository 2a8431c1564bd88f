"""The interactive API docs at /api/v1/docs: everything from this server, under the pages' CSP.

A script loaded from a public CDN without an integrity hash runs with the page's origin:
whoever serves or alters it can act as the signed-in user. The page must load nothing from
elsewhere and run no inline script, and Swagger UI must still show the operations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.web.conftest import Console, Site, screenshot

pytestmark = pytest.mark.integration

DOCS = "/api/v1/docs"


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as c:
        yield c


def test_the_docs_page_loads_its_files_from_this_server_under_the_pages_csp(
    client: httpx.Client, site: Site
) -> None:
    r = client.get(DOCS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert (
        r.headers["content-security-policy"]
        == client.get("/login").headers["content-security-policy"]
    )
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    # No inline script, no style attribute, no address on another host.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), r.text
    assert " style=" not in r.text
    files = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert files, r.text
    for ref in files:
        url = urljoin(site.url + DOCS, ref)
        assert urlsplit(url).netloc == urlsplit(site.url).netloc, ref
        got = client.get(url)
        assert got.status_code == 200, ref
        assert got.headers["content-type"].split(";")[0] in ("text/javascript", "text/css"), ref
        assert "public" in got.headers["cache-control"]
    assert any(f.endswith("swagger-ui-bundle.js") for f in files)


def test_swagger_ui_shows_the_operations_with_no_csp_violation_and_no_outside_request(
    page: Any, console: Console, site: Site
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site.url + DOCS)
    operations = page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() > 20
    page.get_by_text("/api/v1/credentials/{credential_id}/verify").first.wait_for()
    # Try it out: the page calls the API on this origin (connect-src 'self').
    me = page.locator(".opblock", has=page.locator("[data-path='/api/v1/me']")).first
    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    me.locator(".live-responses-table .response-col_status", has_text="401").wait_for()
    screenshot(page, "api-docs")
    assert console.csp_violations() == []
    outside = [u for u in requested if urlsplit(u).netloc != urlsplit(site.url).netloc]
    assert outside == []
