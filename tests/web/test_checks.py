"""The Pull check page in a real browser, against a real registry with token auth.

The server is given the registry's CA under DATA/certs.d/HOST/ca.crt, as an operator
would; the credentials live on the server and are tried there, never shown.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.registry.conftest import oci_layouts, token_registry  # noqa: F401
from tests.registry.servers import TokenRegistry
from tests.web.conftest import (
    Console,
    Site,
    _require_browser,
    log_in,
    open_site,
    screenshot,
    violations,
)

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-alices-password-77"  # a throwaway test value


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture(scope="module")
def site(  # this module's server trusts the registry's CA
    tmp_path_factory: pytest.TempPathFactory,
    token_registry: TokenRegistry,  # noqa: F811
) -> Iterator[Site]:
    _require_browser()
    base = tmp_path_factory.mktemp("web-checks")
    assert token_registry.ca_file is not None
    certs = base / "data" / "certs.d" / token_registry.host
    certs.mkdir(parents=True)
    shutil.copyfile(token_registry.ca_file, certs / "ca.crt")
    with open_site(base) as s:
        alice = token_registry.alice
        common = {"cluster": "prod", "provider": "custom", "server": token_registry.host}
        # Namespace scope first: the kubelet tries the more specific Secret first.
        s.create_credential(
            name="wrong",
            scope="namespace",
            namespace="a-web",
            username=alice.username,
            password=WRONG_PASSWORD,
            **common,
        )
        s.create_credential(
            name="alice",
            scope="project",
            project=s.projects["team-a"],
            username=alice.username,
            password=alice.password,
            **common,
        )
        yield s


def _check(page: Any, image: str, namespace: str, cluster: str | None = None) -> Any:
    page.get_by_label("Image", exact=True).fill(image)
    if cluster is not None:
        page.get_by_label("Cluster").select_option(cluster)
    page.get_by_label("Namespace").fill(namespace)
    page.get_by_role("button", name="Check").click()
    return page.locator("#check-result")


def test_check_names_the_failing_and_the_working_credential(
    page: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
    console: Console,
) -> None:
    image = token_registry.image("team-a/app:v1")
    log_in(page, site, "bob")  # a member of team-a may check with its credentials
    page.get_by_role("link", name="Pull check").click()
    page.wait_for_url(site.url + "/checks")
    # bob sees one cluster only, so there is no cluster to choose.
    expect()(page.get_by_label("Cluster")).to_have_count(0)
    result = _check(page, image.reference, "a-web")
    expect()(result.locator(".decision")).to_have_text("Can pull")
    attempts = result.locator(".attempts li")
    expect()(attempts).to_have_count(2)
    first, second = attempts.nth(0), attempts.nth(1)
    expect()(first).to_contain_text(f"wrong ({token_registry.alice.username}@")
    expect()(first).to_contain_text("fails")
    expect()(first.locator(".cause")).to_have_text("unauthorized")
    expect()(first.locator(".message")).to_contain_text("wrong user name or password")
    expect()(second).to_contain_text("alice (")
    expect()(second.locator(".badge")).to_have_text("works")
    expect()(result.locator(".digest")).to_have_text(image.digest)
    expect()(result.locator(".platforms")).to_have_text(", ".join(image.platform_digests))
    expect()(result.locator(".pull-policy")).to_have_text("IfNotPresent")
    # The form keeps what was asked.
    expect()(page.get_by_label("Namespace")).to_have_value("a-web")
    screenshot(page, "pull-check")
    assert violations(page) == []  # WCAG 2.1 A/AA, results shown
    html = page.content()
    assert WRONG_PASSWORD not in html and token_registry.alice.password not in html
    assert console.csp_violations() == []


def test_every_credential_and_a_missing_tag(
    page: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
) -> None:
    image = token_registry.image("team-a/app:v1")
    log_in(page, site, "admin", site.server.admin_password)
    page.goto(site.url + "/checks")
    page.get_by_label("Try every credential").check()
    page.get_by_label("Pull policy (optional)").select_option("Always")
    # The admin sees both clusters and chooses; the wrong one does not know the namespace.
    result = _check(page, image.reference, "a-web", "staging")
    expect()(page.get_by_role("alert")).to_contain_text("a-web")
    expect()(result).to_have_count(0)
    result = _check(page, image.reference, "a-web", "prod")
    expect()(result.locator(".attempts li")).to_have_count(2)
    expect()(result.locator(".pull-policy")).to_have_text("Always")

    missing = image.reference.replace(":v1", ":gone")
    page.get_by_label("Try every credential").uncheck()
    result = _check(page, missing, "a-web")
    expect()(result.locator(".decision")).to_contain_text("Cannot pull")
    expect()(result.locator(".decision")).to_contain_text("does not exist")
    expect()(result.locator(".digest")).to_have_count(0)


def test_bad_input_and_other_projects_are_refused(page: Any, site: Site) -> None:
    log_in(page, site, "carol")  # a member of team-b only
    page.goto(site.url + "/checks")
    page.get_by_role("button", name="Check").click()
    expect()(page.locator("#image-error")).to_contain_text("write the image")
    expect()(page.locator("#namespace-error")).to_contain_text("write the namespace")
    _check(page, "UPPER/Case", "b-web")
    expect()(page.locator("#image-error")).to_be_visible()
    expect()(page.locator("#check-result")).to_have_count(0)
    # team-a's namespace: carol may not use its credentials.
    _check(page, "registry.example.com/team-a/app:v1", "a-web")
    expect()(page.get_by_role("alert")).to_be_visible()
    expect()(page.locator("#check-result")).to_have_count(0)


def _fill_login(page: Any, host: str, username: str, password: str) -> None:
    page.get_by_label("Registry address").fill(host)
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password or token").fill(password)


def test_test_login_checks_the_typed_credential_without_saving_it(
    page: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
    console: Console,
) -> None:
    alice = token_registry.alice
    log_in(page, site, "alice")  # owner of team-a
    page.goto(site.url + "/credentials/new?provider=custom")
    page.get_by_label("Name", exact=True).fill("typed-login")
    _fill_login(page, token_registry.host, alice.username, WRONG_PASSWORD)
    page.get_by_role("button", name="Test login").click()
    result = page.locator("#login-result")
    expect()(result).to_contain_text("Login fails (unauthorized)")
    expect()(result).to_contain_text("wrong user name or password")
    # htmx swapped only the result: what was typed stays in the form, in the browser.
    expect()(page.get_by_label("Password or token")).to_have_value(WRONG_PASSWORD)
    page.get_by_label("Password or token").fill(alice.password)
    page.get_by_role("button", name="Test login").click()
    expect()(result).to_contain_text(f"Login works: {token_registry.host} accepted")
    screenshot(page, "create-test-login", full_page=False)
    page.get_by_label("User name").fill("")
    page.get_by_role("button", name="Test login").click()
    expect()(result).to_have_text("Not tested: a user name is required")
    assert console.csp_violations() == []
    # Nothing was saved, and the secrets are in no page or log of the server.
    assert site.credentials("typed-login") == []
    assert alice.password not in page.content()
    logs = site.server.stderr_log.read_text(errors="replace")
    logs += (site.server.stderr_log.parent / "serve.out").read_text(errors="replace")
    assert WRONG_PASSWORD not in logs and alice.password not in logs


def test_test_login_without_javascript_never_echoes_the_password(
    browser: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + "/credentials/new?provider=custom")
        page.get_by_label("Name", exact=True).fill("nojs-login")
        _fill_login(page, token_registry.host, token_registry.alice.username, WRONG_PASSWORD)
        page.get_by_role("button", name="Test login").click()
        expect()(page.locator("#login-result")).to_contain_text("wrong user name or password")
        # The form comes back with what was typed, except the password.
        expect()(page.get_by_label("Name", exact=True)).to_have_value("nojs-login")
        expect()(page.get_by_label("Password or token")).to_have_value("")
        expect()(page.locator("#login-test-hint")).to_contain_text("type it again to save")
        assert WRONG_PASSWORD not in page.content()
        assert site.credentials("nojs-login") == []
    finally:
        context.close()


def test_members_cannot_test_logins(page: Any, site: Site, token_registry: TokenRegistry) -> None:  # noqa: F811
    log_in(page, site, "bob")  # member of team-a: may not create registries
    page.goto(site.url + "/credentials/new?provider=custom")
    # The page says so before anything is typed, and offers no form.
    expect()(page.locator("#may-not-create")).to_contain_text("You cannot add registries")
    expect()(page.get_by_role("button", name="Test login")).to_have_count(0)
    # The form sent anyway (as htmx would) is refused by the use case.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.request.post(
        site.url + "/credentials/new/test",
        multipart={
            "csrf": csrf,
            "provider": "custom",
            "server": token_registry.host,
            "username": token_registry.alice.username,
            "password": WRONG_PASSWORD,
        },
        headers={"HX-Request": "true", "Origin": site.url},
    )
    assert "Not tested: only an admin or a project owner can test a registry login" in r.text()


def _docker_config(host: str, username: str, password: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {host: {"auth": auth}}}


def _pull_secret(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def _check_with_file(page: Any, image: str, name: str, content: bytes) -> Any:
    page.get_by_label("Image", exact=True).fill(image)
    page.get_by_label("Or a credential file (optional)").set_input_files(
        {"name": name, "mimeType": "application/octet-stream", "buffer": content}
    )
    page.get_by_role("button", name="Check").click()
    return page.locator("#check-result")


def test_check_with_an_uploaded_credential_file(
    page: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
    console: Console,
) -> None:
    image = token_registry.image("team-a/app:v1")
    alice, host = token_registry.alice, token_registry.host
    log_in(page, site, "carol")  # her project's credentials play no part: the file's do
    page.goto(site.url + "/checks")

    config = json.dumps(_docker_config(host, alice.username, alice.password)).encode()
    result = _check_with_file(page, image.reference, "config.json", config)
    expect()(result.locator("h2")).to_have_text(f"{image.reference} with config.json")
    expect()(result.locator(".decision")).to_have_text("Can pull")
    expect()(result.locator(".attempts li")).to_have_count(1)
    expect()(result.locator(".attempts li")).to_contain_text(f"config.json ({alice.username}@")
    expect()(result.locator(".digest")).to_have_text(image.digest)

    # Two pull secrets in one manifest: tried in their order, each with its answer.
    secrets = yaml.safe_dump_all(
        [
            _pull_secret("stale", _docker_config(host, alice.username, WRONG_PASSWORD)),
            _pull_secret("current", _docker_config(host, alice.username, alice.password)),
        ]
    ).encode()
    result = _check_with_file(page, image.reference, "secrets.yaml", secrets)
    attempts = result.locator(".attempts li")
    expect()(attempts).to_have_count(2)
    expect()(attempts.nth(0)).to_contain_text("secrets.yaml#0 (stale)")
    expect()(attempts.nth(0).locator(".cause")).to_have_text("unauthorized")
    expect()(attempts.nth(1)).to_contain_text("secrets.yaml#1 (current)")
    expect()(attempts.nth(1).locator(".badge")).to_have_text("works")
    screenshot(page, "pull-check-file")
    assert violations(page) == []  # WCAG 2.1 A/AA, results shown

    # A file for another registry: the kubelet would pull anonymously, and is refused.
    other = json.dumps(_docker_config("quay.io", "robot", "robot-s3cret")).encode()
    result = _check_with_file(page, image.reference, "other.json", other)
    expect()(result.locator(".decision")).to_contain_text("Cannot pull")
    expect()(result).to_contain_text("No credential in the file matches this image")

    # A file that is none of the kinds says so next to the field, and nothing is checked.
    _check_with_file(page, image.reference, "notes.txt", b"{not json")
    expect()(page.locator("#config-error")).to_contain_text(
        "notes.txt: not a docker config or a Secret manifest"
    )
    expect()(page.locator("#check-result")).to_have_count(0)
    # A namespace and a file: the check is of one or the other.
    page.get_by_label("Namespace").fill("b-web")
    _check_with_file(page, image.reference, "config.json", config)
    expect()(page.locator("#config-error")).to_contain_text("or a config, not both")
    expect()(page.locator("#check-result")).to_have_count(0)
    html = page.content()
    assert alice.password not in html and WRONG_PASSWORD not in html
    assert console.csp_violations() == []


def test_viewers_cannot_check_with_a_file(page: Any, site: Site) -> None:
    password = "vic-viewer-pw-12"  # throwaway test value
    r = site.api.post("/users", json={"username": "vic", "password": password, "viewer": True})
    assert r.status_code == 201, r.text
    log_in(page, site, "vic", password)
    page.goto(site.url + "/checks")
    config = json.dumps(_docker_config("quay.io", "robot", "robot-s3cret")).encode()
    _check_with_file(page, "quay.io/org/app:1", "config.json", config)
    expect()(page.get_by_role("alert")).to_contain_text("only an admin, or an owner or member")
    expect()(page.locator("#check-result")).to_have_count(0)


def test_a_registrys_page_lists_its_last_checks_and_checks_the_login_now(
    page: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
) -> None:
    image = token_registry.image("team-a/app:v1")
    log_in(page, site, "bob")
    page.goto(site.url + "/checks")
    _check(page, image.reference, "a-api")  # team-a's project credential only: it works
    [alice] = site.credentials("alice")
    page.goto(f"{site.url}/credentials/{alice['id']}")
    latest = page.locator("#checks tbody tr").first
    expect()(latest).to_contain_text(f"pull check of {image.reference}")
    expect()(latest).to_contain_text("bob")
    expect()(latest.locator(".badge")).to_have_text("ok")

    [wrong] = site.credentials("wrong")
    page.goto(f"{site.url}/credentials/{wrong['id']}")
    before = page.locator("#checks tbody tr").count()
    page.get_by_role("button", name="Check login now").click()
    expect()(page.get_by_role("status")).to_have_text("Login checked: it fails (unauthorized).")
    rows = page.locator("#checks tbody tr")
    expect()(rows).to_have_count(before + 1)
    expect()(rows.first).to_contain_text("login")
    expect()(rows.first.locator(".cause")).to_have_text("unauthorized")
    assert violations(page) == []
    assert WRONG_PASSWORD not in page.content()

    # carol (team-b) does not see team-a's registry, nor its checks.
    page.context.clear_cookies()
    log_in(page, site, "carol")
    page.goto(f"{site.url}/credentials/{wrong['id']}")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_a_check_says_when_the_pull_relies_on_the_nodes_config_json(
    page: Any,
    site: Site,
    token_registry: TokenRegistry,  # noqa: F811
) -> None:
    """kube-system gets no Secrets; the every-node profile's login is what its pods pull
    with, and its mirror is asked first: the result says both."""
    alice = token_registry.alice
    made = site.create_credential(
        name="alice-nodes",
        cluster="prod",
        scope="cluster",
        provider="custom",
        server=token_registry.host,
        username=alice.username,
        password=alice.password,
    )
    profile = {
        "name": "base",
        "registries": [{"host": token_registry.host, "mirrors": ["https://mirror.corp.example"]}],
        "credentials": ["alice-nodes"],
    }
    assert site.api.post("/clusters/prod/node-profiles", json=profile).status_code == 201
    assert site.api.put("/clusters/prod/namespaces/kube-system", json={}).status_code == 200
    try:
        log_in(page, site, "admin", site.server.admin_password)
        page.goto(site.url + "/checks")
        image = token_registry.image("team-a/app:v1").reference
        result = _check(page, image, "kube-system", "prod")
        expect()(result.locator(".decision")).to_have_text("Can pull")
        expect()(result.locator(".attempts li")).to_have_count(1)
        expect()(result.locator(".attempts li").nth(0)).to_contain_text(
            "node config.json (profile base): alice-nodes"
        )
        route = result.locator(".node-route")
        expect()(route).to_contain_text("relies on the node's own config.json")
        expect()(route.locator(".mirrors li")).to_have_text(
            ["https://mirror.corp.example: asks https://mirror.corp.example/v2/team-a/app"]
        )
        assert alice.password not in page.content()
    finally:
        assert site.api.delete("/clusters/prod/node-profiles/base").status_code == 204
        assert site.api.delete(f"/credentials/{made['id']}").status_code == 204
