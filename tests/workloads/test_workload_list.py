"""The Workloads list (GET /api/v1/workloads and the /workloads page) on the real node: a
Deployment whose image the kubelet pulled, and one it cannot pull (ImagePullBackOff, in the
kubelet's words), each with its pull state; narrowed to a project, a namespace or a
registry's Secret, and to what the asking user may see."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import Env, user_password
from tests.workloads.conftest import RUNNABLE, Cluster, eventually

pytestmark = pytest.mark.settings(sync=True, sync_poll_seconds=0.2)


def _rows(env: Env, token: str | None = None, **params: str) -> dict[tuple[str, str], Any]:
    api = env.api(token) if token else env.admin
    found = api.ok("GET", "workloads", params=params)
    return {(w["namespace"], w["name"]): w for w in found["items"]}


def _web(env: Env, username: str) -> TestClient:
    """A browser-like client logged in to the web pages as the user."""
    client = TestClient(env.app, raise_server_exceptions=False, base_url="http://testserver")
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": user_password(username), "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def test_the_list_shows_what_pulled_and_what_backs_off(pulling_cluster: Cluster) -> None:
    cluster = pulling_cluster
    env = cluster.env
    cluster.delivered("shop", "shop-wrong", "web-alice", "wide-bob")
    cluster.delivered("cart", "cart-alice", "wide-bob")
    image = cluster.image(RUNNABLE)
    # Another tag for the one that must fail: once web's pod has pulled RUNNABLE, a pod
    # asking for it again runs from the node's copy without any Secret (IfNotPresent).
    refused = cluster.image("team-a/pod:never-on-the-node")
    env.admin.ok(
        "POST",
        "clusters/c1/namespaces/shop/workloads",
        status=201,
        json={"name": "web", "image": image},
    )
    env.admin.ok(
        "POST",
        "clusters/c1/namespaces/cart/workloads",
        status=201,
        json={"name": "api", "image": refused},
    )

    last: list[Any] = []

    def settled() -> dict[tuple[str, str], Any] | None:
        rows = _rows(env, cluster="c1")
        last[:] = [(k, w["pull_state"], w["pull_reason"]) for k, w in rows.items()]
        web, api = rows.get(("shop", "web"), {}), rows.get(("cart", "api"), {})
        pulled = web.get("pull_state") == "pulled"
        # The kubelet says ErrImagePull at each try, ImagePullBackOff while it waits between.
        failed = "ImagePullBackOff" in api.get("pull_reason", "")
        return rows if pulled and failed else None

    try:
        rows = eventually(settled, 120, what="web pulls and api fails to")
    except AssertionError:
        raise AssertionError(f"last seen: {last}") from None
    web, api = rows[("shop", "web")], rows[("cart", "api")]
    assert (web["kind"], web["images"], web["pods"]) == ("Deployment", [image], 1)
    assert web["image_pull_secrets"] == ["shop-wrong", "web-alice", "wide-bob"]
    assert web["pull_reason"] == "every image is on its node (with shop-wrong, web-alice, wide-bob)"
    assert api["pull_state"] == "pull failed"
    # The kubelet's own words: the image, the reason, and its message.
    assert api["pull_reason"].startswith(
        f'{refused}: ImagePullBackOff: Back-off pulling image "{refused}": ErrImagePull: ['
    ), api["pull_reason"]
    assert "401 Unauthorized" in api["pull_reason"]  # alice's wrong password, as it said

    # Narrowed: to web's namespaces, to cart, to the Secret of web-alice where it reaches.
    assert set(_rows(env, cluster="c1", project="web")) == {("shop", "web")}
    assert set(_rows(env, cluster="c1", namespace="cart")) == {("cart", "api")}
    web_alice = cluster.creds["web-alice"]["id"]
    assert set(_rows(env, credential=web_alice)) == {("shop", "web")}
    # A member of store sees cart's workloads only.
    _, token = env.user("stella")
    env.member("store", "stella", "member")
    assert set(_rows(env, token, cluster="c1")) == {("cart", "api")}

    # The page says the same, the Deployment linked to its page.
    page = _web(env, "stella").get("/workloads", params={"cluster": "c1"})
    assert page.status_code == 200, page.text
    assert "pull failed" in page.text
    # Between two tries the kubelet says ErrImagePull, while it waits ImagePullBackOff.
    assert "ImagePullBackOff" in page.text or "ErrImagePull" in page.text
    assert 'href="/workloads/c1/cart/api"' in page.text
    assert "/workloads/c1/shop/web" not in page.text
