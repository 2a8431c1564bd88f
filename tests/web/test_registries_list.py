"""The Registries list in a real browser on a real serve: sorting by a column's heading (the
filters kept, across pages read by cursor), and deactivating or deleting the ticked registries
after one confirmation, each change checked and audited as a single one is."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Site, log_in

pytestmark = pytest.mark.integration

SORTED = 55  # more than a page (50)


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture(scope="module")
def sortable(site: Site) -> list[dict[str, Any]]:
    """SORTED registries of team-a named in one order, their addresses in the other."""
    made = []
    for i in range(SORTED):
        made.append(
            site.create_credential(
                name=f"sort-{i:02d}",
                cluster="prod",
                scope="namespace",
                namespace="a-web",
                provider="custom",
                server=f"reg{SORTED - i:02d}.sort.example",
                username="robot",
                password=f"sort-pw-{i}",
            )
        )
    return made


def _names(page: Any) -> list[str]:
    cells = page.locator("#results tbody tr td[data-label='Name']")
    return [t.strip() for t in cells.all_inner_texts()]


def _every_page(page: Any) -> list[str]:
    seen = _names(page)
    while page.get_by_role("link", name="Next page").count():
        page.get_by_role("link", name="Next page").click()
        page.wait_for_load_state()
        seen += _names(page)
    return seen


def test_a_heading_sorts_by_its_column_across_pages(
    page: Any, site: Site, sortable: list[dict[str, Any]]
) -> None:
    by_address = [c["name"] for c in sorted(sortable, key=lambda c: (c["server"], c["id"]))]
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials?q=sort-")
    expect()(page.locator("th[aria-sort='ascending']")).to_have_text("Name ▲")
    page.get_by_role("link", name="Address").click()
    page.wait_for_url("**sort=server**")
    assert "q=sort-" in page.url  # the search is kept
    expect()(page.locator("th[aria-sort='ascending']")).to_have_text("Address ▲")
    assert page.locator("th[aria-sort]").count() == 1
    seen = _every_page(page)
    assert seen == by_address  # all of them, once each, in address order
    assert "sort=server" in page.url and "cursor=" in page.url  # the sort rode the cursor

    # A second click on the heading sorts the other way, from the first page.
    page.get_by_role("link", name="Address").click()
    page.wait_for_url("**sort=-server**")
    expect()(page.locator("th[aria-sort='descending']")).to_have_text("Address ▼")
    assert _every_page(page) == by_address[::-1]

    # Previous goes back through the same order.
    page.get_by_role("link", name="Previous page").click()
    page.wait_for_load_state()
    assert _names(page) == by_address[::-1][:50]


def test_the_api_pages_every_sort_by_cursor(site: Site, sortable: list[dict[str, Any]]) -> None:
    every = site.credentials("sort-")
    for sort in ("name", "-name", "server", "scope", "-state", "updated", "-updated"):
        field = sort.lstrip("-")
        key = {"updated": "updated_at"}.get(field, field)
        want = sorted(every, key=lambda c: (c[key], c["id"]), reverse=sort.startswith("-"))
        got: list[str] = []
        params: dict[str, Any] = {"q": "sort-", "limit": 7, "sort": sort}
        while True:
            r = site.api.get("/credentials", params=params)
            assert r.status_code == 200, r.text
            got += [c["id"] for c in r.json()["items"]]
            if not r.json()["next"]:
                break
            params["cursor"] = r.json()["next"]
        assert got == [c["id"] for c in want], sort
    r = site.api.get("/credentials", params={"sort": "colour"})
    assert r.status_code == 422
    assert "sort must be one of name, server, scope, state, updated" in r.text


def _ticked(site: Site, tag: str) -> dict[str, dict[str, Any]]:
    """Two registries of team-a (alice owns it) and one of the whole cluster (admins only)."""
    common = {"cluster": "prod", "provider": "custom", "username": "robot", "password": "pw-9x"}
    return {
        "a1": site.create_credential(
            name=f"{tag}-a1",
            scope="namespace",
            namespace="a-web",
            server=f"{tag}1.example",
            **common,
        ),
        "a2": site.create_credential(
            name=f"{tag}-a2",
            scope="project",
            project=site.projects["team-a"],
            server=f"{tag}2.example",
            **common,
        ),
        "wide": site.create_credential(
            name=f"{tag}-wide", scope="cluster", server=f"{tag}3.example", **common
        ),
    }


def test_bulk_delete_confirms_once_and_leaves_what_the_user_may_not_change(
    page: Any, site: Site
) -> None:
    made = _ticked(site, "bulkdel")
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials?q=bulkdel-")
    rows = page.locator("#results tbody tr")
    expect()(rows).to_have_count(3)
    page.get_by_label("Select every registry on this page").check()
    for name in ("bulkdel-a1", "bulkdel-a2", "bulkdel-wide"):
        expect()(page.get_by_label(f"Select {name}")).to_be_checked()
    page.get_by_role("button", name="Delete…").click()
    page.wait_for_url("**/credentials/bulk?**")
    # One page says exactly what goes, and what stays since alice may not change it.
    summary = page.locator("#bulk-summary")
    expect()(summary).to_have_text(
        "Delete 2 registries: bulkdel-a1, bulkdel-a2 — their Secrets are removed from 2 namespaces."
    )
    expect()(page.locator("#bulk-refused")).to_contain_text("bulkdel-wide")
    expect()(page.locator("#bulk-refused")).to_contain_text("only an admin or the owner")
    left = {c["name"] for c in site.credentials("bulkdel-")}
    assert left == {"bulkdel-a1", "bulkdel-a2", "bulkdel-wide"}  # nothing done yet
    page.get_by_role("button", name="Delete 2 registries").click()
    page.wait_for_url("**/credentials/bulk/done?**")
    expect()(page.get_by_role("status")).to_have_text("2 registries deleted.")
    expect()(page.locator("#bulk-refused")).to_contain_text("bulkdel-wide")
    assert {c["name"] for c in site.credentials("bulkdel-")} == {"bulkdel-wide"}
    page.reload()  # a GET: reloading the result does nothing again
    expect()(page.get_by_role("status")).to_have_text("2 registries deleted.")
    for key in ("a1", "a2"):
        r = site.api.get(
            "/audit", params={"object_type": "credential", "object_id": made[key]["id"]}
        )
        events = [(e["action"], e["actor"]) for e in r.json()["items"]]
        assert ("credential.delete", "alice") in events, events
    r = site.api.get(
        "/audit", params={"object_type": "credential", "object_id": made["wide"]["id"]}
    )
    assert [e["action"] for e in r.json()["items"]] == ["credential.create"]


def test_bulk_deactivate_and_what_a_member_sees(page: Any, site: Site) -> None:
    made = _ticked(site, "bulkoff")
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials?q=bulkoff-a")
    page.get_by_label("Select bulkoff-a2").check()
    page.get_by_role("button", name="Deactivate…").click()
    expect()(page.locator("#bulk-summary")).to_have_text(
        "Deactivate 1 registry: bulkoff-a2 — their Secrets are removed from 2 namespaces."
    )
    page.get_by_role("button", name="Deactivate 1 registry").click()
    expect()(page.get_by_role("status")).to_have_text("1 registry deactivated.")
    states = {c["name"]: c["state"] for c in site.credentials("bulkoff-")}
    assert states == {"bulkoff-a1": "active", "bulkoff-a2": "inactive", "bulkoff-wide": "active"}
    # Ticked again with another: the inactive one is named as such, not deactivated again.
    page.goto(site.url + "/credentials?q=bulkoff-a")
    page.get_by_label("Select bulkoff-a1").check()
    page.get_by_label("Select bulkoff-a2").check()
    page.get_by_role("button", name="Deactivate…").click()
    expect()(page.locator("#bulk-summary")).to_contain_text("Deactivate 1 registry: bulkoff-a1")
    expect()(page.locator("#bulk-unchanged")).to_have_text(
        "1 ticked registry is inactive already: bulkoff-a2."
    )
    page.get_by_role("button", name="Deactivate 1 registry").click()
    expect()(page.get_by_role("status")).to_have_text("1 registry deactivated.")
    r = site.api.get("/audit", params={"object_type": "credential", "object_id": made["a2"]["id"]})
    assert "credential.deactivate" in [e["action"] for e in r.json()["items"]]

    # A member may change none: no boxes to tick, and a hand-made request changes nothing.
    page.context.clear_cookies()
    log_in(page, site, "bob")
    page.goto(site.url + "/credentials?q=bulkoff-")
    expect()(page.locator("#results tbody tr")).to_have_count(3)
    assert page.locator("input[type=checkbox]").count() == 0
    page.goto(site.url + f"/credentials/bulk?action=delete&id={made['a1']['id']}")
    expect()(page.locator("h1")).to_have_text("Nothing to delete")
    expect()(page.locator("#bulk-refused")).to_contain_text("bulkoff-a1")
    assert page.get_by_role("button", name="Delete", exact=False).count() == 0


def test_the_api_does_the_same_bulk_change(site: Site) -> None:
    made = _ticked(site, "bulkapi")
    ids = [c["id"] for c in made.values()] + ["no-such-id"]
    r = site.api.post("/credentials/bulk", json={"action": "deactivate", "ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(c["name"] for c in body["changed"]) == [
        "bulkapi-a1",
        "bulkapi-a2",
        "bulkapi-wide",
    ]
    assert body["refused"] == [] and body["missing"] == ["no-such-id"]
    # Again: inactive already, so nothing changes and nothing more is audited.
    r = site.api.post("/credentials/bulk", json={"action": "deactivate", "ids": ids[:3]})
    again = r.json()
    assert again["changed"] == [] and len(again["unchanged"]) == 3, again
    audit = site.api.get("/audit", params={"object_id": made["a1"]["id"]}).json()["items"]
    assert [e["action"] for e in audit].count("credential.deactivate") == 1
    r = site.api.post("/credentials/bulk", json={"action": "explode", "ids": ids})
    assert r.status_code == 422 and "action must be one of deactivate, delete" in r.text


def _tab_to(page: Any, target: Any, back: bool = False, limit: int = 80) -> None:
    """Press Tab (Shift+Tab) until the target has the focus, as a keyboard user would."""
    key = "Shift+Tab" if back else "Tab"
    for _ in range(limit):
        if target.evaluate("e => e === document.activeElement"):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{target} not reached with {key}")


def test_bulk_deactivate_by_keyboard_alone(page: Any, site: Site) -> None:
    _ticked(site, "bulkkey")
    log_in(page, site, "alice")
    page.goto(site.url + "/credentials?q=bulkkey-a1")
    page.get_by_label("Search by name").focus()
    box = page.get_by_label("Select bulkkey-a1")
    _tab_to(page, box)
    page.keyboard.press("Space")
    expect()(box).to_be_checked()
    _tab_to(page, page.get_by_role("button", name="Deactivate…"), back=True)
    page.keyboard.press("Enter")
    page.wait_for_url("**/credentials/bulk?**")
    confirm = page.get_by_role("button", name="Deactivate 1 registry")
    _tab_to(page, confirm)
    page.keyboard.press("Enter")
    expect()(page.get_by_role("status")).to_have_text("1 registry deactivated.")
    states = {c["name"]: c["state"] for c in site.credentials("bulkkey-")}
    assert states["bulkkey-a1"] == "inactive"
