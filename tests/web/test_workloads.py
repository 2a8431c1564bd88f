"""The Deploy workload page in a real browser: a real serve whose sync delivers the Secrets into
the fake cluster, whose kubelet pulls from the real token registry with them.

Namespace shop (project web of cluster prod) is reached by web-alice (project scope, the
right password) and wide-wrong (cluster-wide, alice's name with a wrong password), in that
kubelet order.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.kube.fake_apiserver import FakeApiServer
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
from tests.workloads.conftest import PROJECT_LABEL, WRONG_PASSWORD, Kubelet, eventually, trust

pytestmark = pytest.mark.integration

VIEWER_PASSWORD = "vera-viewer-pw-5"  # throwaway test logins
NOBODY_PASSWORD = "nobody-user-pw-6"
SHOP_SECRETS = ["web-alice", "wide-wrong"]


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


class HeldKubelet(Kubelet):
    """Pulls only while `go` is set, so a test can watch a rollout that is still going on."""

    def __init__(self, fake: FakeApiServer, registry: TokenRegistry) -> None:
        super().__init__(fake, registry)
        self.go = threading.Event()
        self.go.set()

    def __call__(self, image: str, namespace: str, secret_names: list[str]) -> tuple[bool, str]:
        self.go.wait(60)
        return super().__call__(image, namespace, secret_names)


@dataclass
class Setup:
    site: Site
    fake: FakeApiServer
    kubelet: HeldKubelet
    registry: TokenRegistry

    @property
    def url(self) -> str:
        return self.site.url

    def deployments(self, namespace: str = "shop") -> set[str]:
        return {d["metadata"]["name"] for d in self.fake.objects("deployments", namespace)}

    def assert_no_password(self, html: str) -> None:
        assert WRONG_PASSWORD not in html
        assert self.registry.alice.password not in html


def _ok(r: Any) -> Any:
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    token_registry: TokenRegistry,  # noqa: F811
) -> Iterator[Setup]:
    _require_browser()
    base = tmp_path_factory.mktemp("web-workloads")
    trust(base / "data", token_registry)
    fake = FakeApiServer().start()
    try:
        # The namespaces open_site registers on prod, and shop.
        for ns, project in (("shop", "web"), ("a-web", "team-a"), ("a-api", "team-a")):
            fake.create(
                "namespaces", {"metadata": {"name": ns, "labels": {PROJECT_LABEL: project}}}
            )
        fake.create(
            "namespaces", {"metadata": {"name": "b-web", "labels": {PROJECT_LABEL: "team-b"}}}
        )
        kubelet = HeldKubelet(fake, token_registry)
        fake.simulate(kubelet)
        with open_site(base) as site:
            api = site.api
            kubeconfig = str(fake.kubeconfig(base / "kubeconfig"))
            _ok(api.patch("/clusters/prod", json={"kubeconfig": kubeconfig}))
            web = _ok(api.post("/projects", json={"name": "web", "cluster": "prod"}))
            _ok(api.put("/clusters/prod/namespaces/shop", json={"project": web["id"]}))
            for user, password in (("vera", VIEWER_PASSWORD), ("nobody", NOBODY_PASSWORD)):
                _ok(api.post("/users", json={"username": user, "password": password}))
            for user, role in (("bob", "member"), ("vera", "viewer")):
                _ok(api.put(f"/projects/{web['id']}/members/{user}", json={"role": role}))
            alice, host = token_registry.alice, token_registry.host
            common = {"cluster": "prod", "provider": "custom", "server": host}
            site.create_credential(
                name="web-alice",
                scope="project",
                project=web["id"],
                username=alice.username,
                password=alice.password,
                **common,
            )
            site.create_credential(
                name="wide-wrong",
                scope="cluster",
                username=alice.username,
                password=WRONG_PASSWORD,
                **common,
            )
            eventually(
                lambda: (
                    set(SHOP_SECRETS)
                    <= {s["metadata"]["name"] for s in fake.objects("secrets", "shop")}
                ),
                timeout=60,
                what="the sync delivers shop's Secrets",
            )
            yield Setup(site, fake, kubelet, token_registry)
    finally:
        fake.stop()


def _log_in(page: Any, setup: Setup, user: str, password: str | None = None) -> None:
    if user == "admin":
        password = setup.site.server.admin_password
    log_in(page, setup.site, user, password)


def _fill(page: Any, namespace: str, name: str, image: str, cluster: str | None = None) -> None:
    if cluster is not None:
        page.get_by_label("Cluster").select_option(cluster)
    page.get_by_label("Namespace").fill(namespace)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Image", exact=True).fill(image)


def _type(field: Any, text: str) -> None:
    """As a user types: key by key, so the page sees keyup."""
    field.fill("")
    field.press_sequentially(text)


def test_the_preview_follows_the_image_as_it_is_typed(
    page: Any, setup: Setup, console: Console
) -> None:
    _log_in(page, setup, "bob")  # member of web
    page.get_by_role("link", name="Deploy").click()
    page.wait_for_url(setup.url + "/workloads/new")
    # bob sees one cluster: it is chosen already.
    expect()(page.get_by_label("Cluster")).to_have_value("prod")
    expect()(page.get_by_label("Replicas")).to_have_value("1")
    preview = page.locator("#pull-secrets")
    expect()(preview).to_contain_text("Choose the cluster and write the namespace and the image")

    _type(page.get_by_label("Namespace"), "shop")
    image = setup.registry.ref("team-a/app:v1")
    _type(page.get_by_label("Image", exact=True), image)
    rows = preview.locator("tbody tr")
    expect()(rows).to_have_count(2)
    expect()(rows.nth(0)).to_contain_text("web-alice")
    expect()(rows.nth(0)).to_contain_text("project")
    expect()(rows.nth(0)).to_contain_text(setup.registry.host)
    expect()(rows.nth(1)).to_contain_text("wide-wrong")
    expect()(rows.nth(1)).to_contain_text("cluster")
    expect()(rows.nth(1).locator("td").nth(3)).to_have_text("wide-wrong")

    _type(page.get_by_label("Image", exact=True), "quay.io/x/y:1")
    expect()(preview).to_contain_text("No credential matches quay.io/x/y:1")
    expect()(preview).to_contain_text("pulls it anonymously")
    expect()(rows).to_have_count(0)

    # An image that names no registry is previewed as admission rewrites it.
    _ok(setup.site.api.put("/clusters/prod/policy", json={"default_registry": setup.registry.host}))
    try:
        _type(page.get_by_label("Image", exact=True), "team-a/app:v1")
        expect()(preview.locator(".rewritten")).to_contain_text(
            f"it is pulled as {setup.registry.host}/team-a/app:v1"
        )
        expect()(rows).to_have_count(2)
    finally:
        _ok(setup.site.api.put("/clusters/prod/policy", json={"default_registry": None}))

    _type(page.get_by_label("Image", exact=True), "Bad//Image")
    expect()(preview.locator("#preview-error")).to_contain_text(
        "'Bad//Image' is not a valid image reference"
    )
    _type(page.get_by_label("Namespace"), "nowhere")
    expect()(preview.locator("#preview-error")).to_contain_text("no namespace 'nowhere'")

    _type(page.get_by_label("Namespace"), "shop")
    _type(page.get_by_label("Image", exact=True), image)
    page.get_by_label("Name", exact=True).fill("shown")
    expect()(rows).to_have_count(2)
    screenshot(page, "workload-new")
    assert violations(page) == []  # WCAG 2.1 A/AA, results shown
    setup.assert_no_password(page.content())
    assert "shown" not in setup.deployments()
    assert console.csp_violations() == []


def test_deploy_then_follow_the_rollout_until_ready(
    page: Any, setup: Setup, console: Console
) -> None:
    image = setup.registry.ref("team-a/app:v1")
    _log_in(page, setup, "bob")
    page.goto(setup.url + "/workloads/new")
    _fill(page, "shop", "web", image)
    page.get_by_label("Container port (optional)").fill("8080")
    setup.kubelet.go.clear()  # the pull waits until the page shows the rollout going on
    try:
        page.get_by_role("button", name="Deploy", exact=True).click()
        page.wait_for_url(setup.url + "/workloads/prod/shop/web?created=1")
        live = setup.fake.get("deployments", "web", "shop")
        assert live is not None
        spec = live["spec"]["template"]["spec"]
        assert spec["imagePullSecrets"] == [{"name": n} for n in SHOP_SECRETS]
        assert spec["containers"][0]["ports"][0]["containerPort"] == 8080
        expect()(page.get_by_role("status")).to_contain_text("Deployment web created")
        attached = page.locator("table.pull-secrets tbody tr")
        expect()(attached).to_have_count(2)
        expect()(attached.nth(0)).to_contain_text("web-alice")
        expect()(attached.nth(0)).to_contain_text("project")
        expect()(attached.nth(1)).to_contain_text("wide-wrong")
        expect()(attached.nth(1)).to_contain_text("cluster")
        state = page.locator("#rollout .rollout-state .badge")
        expect()(state).to_have_text("Rolling out")
        expect()(page.locator("#rollout").get_by_role("link", name="Refresh")).to_be_visible()
        page.evaluate("window.notReloaded = true")
    finally:
        setup.kubelet.go.set()
    # htmx polls the rollout section; the page itself is not loaded again.
    expect()(state).to_have_text("Ready", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    rollout = page.locator("#rollout")
    expect()(rollout.locator(".replicas")).to_have_text("1/1")
    expect()(rollout.locator(".event-reason", has_text="Pulled")).to_have_count(1)
    expect()(rollout.locator(".event-message", has_text=f'Pulling image "{image}"')).to_have_count(
        1
    )
    expect()(rollout.locator("table.pods")).to_contain_text("running")
    # Final: no more polling, and no Refresh link.
    expect()(page.locator("#rollout[hx-trigger]")).to_have_count(0)
    expect()(rollout.get_by_role("link", name="Refresh")).to_have_count(0)
    expect()(rollout.locator(".diagnosis")).to_have_count(0)
    screenshot(page, "workload-status")
    assert violations(page) == []  # WCAG 2.1 A/AA, results shown
    setup.assert_no_password(page.content())
    assert console.csp_violations() == []


def test_a_failed_pull_shows_the_event_and_the_diagnosis(page: Any, setup: Setup) -> None:
    image = setup.registry.ref("team-a/app:no-such-tag")
    _log_in(page, setup, "admin")
    page.goto(setup.url + "/workloads/new")
    # The admin sees both clusters and chooses.
    expect()(page.get_by_label("Cluster")).to_have_value("")
    _fill(page, "shop", "gone", image, cluster="prod")
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.wait_for_url(re.compile(r"/workloads/prod/shop/gone\?created=1$"))
    rollout = page.locator("#rollout")
    expect()(rollout.locator(".rollout-state .badge")).to_have_text("Failed", timeout=20_000)
    expect()(rollout.locator(".rollout-state")).to_contain_text("ImagePullBackOff")
    expect()(
        rollout.locator(".event-message", has_text=f'Failed to pull image "{image}"')
    ).to_have_count(1)
    expect()(rollout.locator(".event-message", has_text="Error: ImagePullBackOff")).to_have_count(1)
    diagnosis = rollout.locator(".diagnosis")
    expect()(diagnosis).to_have_count(1)
    expect()(diagnosis.locator(".decision")).to_contain_text("Cannot pull (not found)")
    expect()(diagnosis.locator(".decision")).to_contain_text("web-alice")
    attempts = diagnosis.locator(".attempts li")
    expect()(attempts).to_have_count(2)
    expect()(attempts.nth(0)).to_contain_text("web-alice")
    expect()(attempts.nth(0).locator(".cause")).to_have_text("not found")
    expect()(attempts.nth(1)).to_contain_text("wide-wrong")
    expect()(attempts.nth(1).locator(".cause")).to_have_text("unauthorized")
    expect()(attempts.nth(1).locator(".message")).to_contain_text("wrong user name or password")
    expect()(page.locator("#rollout[hx-trigger]")).to_have_count(0)
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "workload-failed-narrow")
    assert violations(page) == []  # WCAG 2.1 A/AA, results shown
    setup.assert_no_password(page.content())

    # staging has no kubeconfig: said on the cluster field, nothing else to fix.
    page.goto(setup.url + "/workloads/new")
    _fill(page, "c-web", "elsewhere", image, cluster="staging")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect()(page.locator("#cluster-error")).to_contain_text(
        "cluster 'staging' cannot be reached with its access settings"
    )


def test_inline_errors_and_nothing_created(page: Any, setup: Setup) -> None:
    image = setup.registry.ref("team-a/app:v1")
    setup.fake.create(
        "deployments",
        {
            "metadata": {"name": "taken", "namespace": "shop"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "taken"}},
                "template": {
                    "metadata": {"labels": {"app": "taken"}},
                    "spec": {"containers": [{"name": "taken", "image": image}]},
                },
            },
        },
    )
    before = setup.deployments()
    _log_in(page, setup, "bob")
    page.goto(setup.url + "/workloads/new")
    deploy = page.get_by_role("button", name="Deploy", exact=True)

    _fill(page, "shop", "Not_A_Name", image)
    deploy.click()
    expect()(page.locator("#name-error")).to_have_text(
        'the name may have only lowercase letters, digits and "-", and must start and end '
        "with a letter or digit, such as web"
    )
    expect()(page.get_by_label("Name", exact=True)).to_have_attribute(
        "aria-describedby", "name-hint name-error"
    )
    # The form keeps what was typed.
    expect()(page.get_by_label("Image", exact=True)).to_have_value(image)

    _fill(page, "shop", "taken", image)
    deploy.click()
    expect()(page.locator("#name-error")).to_contain_text(
        "a Deployment named 'taken' already exists in namespace 'shop'"
    )

    _fill(page, "nowhere", "fresh", image)
    deploy.click()
    expect()(page.locator("#namespace-error")).to_contain_text("no namespace 'nowhere'")
    expect()(page.get_by_role("alert").get_by_role("link", name="Namespace")).to_have_count(1)
    # Said once: the list of pull secrets does not repeat it.
    expect()(page.locator("#pull-secrets")).not_to_contain_text("no namespace 'nowhere'")

    _fill(page, "shop", "fresh", "Bad//Image")
    page.get_by_label("Replicas").fill("-1")
    deploy.click()
    expect()(page.locator("#replicas-error")).to_be_visible()
    page.get_by_label("Replicas").fill("1")
    deploy.click()
    expect()(page.locator("#image-error")).to_contain_text("'Bad//Image'")

    assert setup.deployments() == before
    taken = setup.fake.get("deployments", "taken", "shop")
    assert taken is not None and taken["spec"]["replicas"] == 0


def test_other_projects_viewers_and_nobodies_cannot_deploy(
    page: Any, browser: Any, setup: Setup
) -> None:
    image = setup.registry.ref("team-a/app:v1")
    setup.fake.create(
        "deployments",
        {
            "metadata": {"name": "seen", "namespace": "shop"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "seen"}},
                "template": {
                    "metadata": {"labels": {"app": "seen"}},
                    "spec": {"containers": [{"name": "seen", "image": image}]},
                },
            },
        },
    )
    before = setup.deployments()
    _log_in(page, setup, "carol")  # member of team-b: may deploy, but not into shop
    page.goto(setup.url + "/workloads/prod/shop/seen")
    expect()(page.get_by_role("heading", level=1)).to_have_text("Not found")
    page.goto(setup.url + "/workloads/new")
    _fill(page, "shop", "intruder", image)
    page.get_by_label("Image", exact=True).press("Tab")  # leaving the field: change
    expect()(page.locator("#pull-secrets #preview-error")).to_contain_text("no namespace 'shop'")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect()(page.locator("#namespace-error")).to_contain_text("no namespace 'shop'")
    setup.assert_no_password(page.content())

    for user, password in (("vera", VIEWER_PASSWORD), ("nobody", NOBODY_PASSWORD)):
        context = browser.new_context()
        try:
            other = context.new_page()
            _log_in(other, setup, user, password)
            expect()(other.get_by_role("link", name="Deploy")).to_have_count(0)
            response = other.goto(setup.url + "/workloads/new")
            assert response.status == 403
            expect()(other.get_by_role("alert")).to_contain_text("You cannot deploy workloads")
            expect()(other.locator("#workload-form")).to_have_count(0)
            # Sent anyway (with the session's CSRF token): the service refuses.
            csrf = other.locator("input[name=csrf]").first.get_attribute("value")
            body = {"csrf": csrf, "cluster": "prod", "namespace": "shop", "name": user}
            sent = other.request.post(
                setup.url + "/workloads/new",
                form=body | {"image": image, "replicas": "1"},
                headers={"origin": setup.url},
            )
            assert sent.status == 403, sent.text()
            assert "deploy" in sent.text()
            # A viewer of web reads the rollout, not the passwords.
            if user == "vera":
                other.goto(setup.url + "/workloads/prod/shop/seen")
                expect()(other.get_by_role("heading", level=1)).to_have_text("Deployment seen")
                setup.assert_no_password(other.content())
        finally:
            context.close()
    assert setup.deployments() == before


def test_the_form_works_without_javascript(browser: Any, setup: Setup) -> None:
    image = setup.registry.ref("team-a/app:v1")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        _log_in(page, setup, "bob")
        page.goto(setup.url + "/workloads/new")
        _fill(page, "shop", "plain", image)
        page.get_by_label("Replicas").fill("0")
        # Without htmx the preview is a form POST that comes back with the page.
        page.get_by_role("button", name="Show the pull secrets").click()
        expect()(page.locator("#pull-secrets tbody tr")).to_have_count(2)
        expect()(page.get_by_label("Name", exact=True)).to_have_value("plain")
        page.get_by_role("button", name="Deploy", exact=True).click()
        page.wait_for_url(setup.url + "/workloads/prod/shop/plain?created=1")
        expect()(page.get_by_role("heading", level=1)).to_have_text("Deployment plain")
        live = setup.fake.get("deployments", "plain", "shop")
        assert live is not None
        assert live["spec"]["replicas"] == 0
        state = page.locator("#rollout .rollout-state .badge")

        def ready() -> bool:
            refresh = page.get_by_role("link", name="Refresh")
            if refresh.count():
                refresh.click()
            return bool(state.inner_text() == "Ready")

        eventually(ready, what="the rollout of plain is ready, by Refresh")
        setup.assert_no_password(page.content())
    finally:
        context.close()
