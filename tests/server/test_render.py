"""GET /clusters/{c}/render: the Secrets pullkeeper delivers, for GitOps, from the store alone."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate

from tests.server.conftest import Env, assert_error, decode_config

MANAGED = {"app.kubernetes.io/managed-by": "pullkeeper"}


def _world(env: Env) -> dict[str, dict[str, Any]]:
    env.cluster("c1")
    env.project("web")
    env.project("api")
    env.namespace("shop", "web")
    env.namespace("cart", "web")
    env.namespace("billing", "api")
    env.namespace("tools", None)
    env.namespace("kube-system", None)
    return {
        "shop-only": env.cred("shop-only", scope="namespace", namespace="shop"),
        "web-pull": env.cred("web-pull", scope="project", project="web", server="quay.io"),
        "wide": env.cred("wide", scope="cluster", server="ghcr.io"),
        "off": env.cred("off", scope="cluster", server="off.example.com", active=False),
        "old": env.cred("old", scope="project", project="api", server="b.example.com"),
        "new": env.cred("new", scope="project", project="api", server="b.example.com"),
    }


def _secrets(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in body["items"]}


def test_render_a_cluster(env: Env) -> None:
    made = _world(env)
    body = env.admin.ok("GET", "clusters/c1/render")
    secrets = _secrets(body)
    assert sorted(secrets) == sorted(
        [
            ("shop", "shop-only"),
            ("shop", "web-pull"),
            ("cart", "web-pull"),
            *((ns, "wide") for ns in ("shop", "cart", "billing", "tools")),
            # "old" is superseded by "new" (same address, same scope); "off" is inactive;
            # kube-system is excluded from cluster-wide delivery by default.
            ("billing", "new"),
        ]
    )
    shop = secrets[("shop", "web-pull")]
    assert shop["type"] == "kubernetes.io/dockerconfigjson"
    assert shop["metadata"]["labels"] == MANAGED | {
        "pullkeeper.io/credential": made["web-pull"]["id"]
    }
    payload = base64.b64decode(shop["data"][".dockerconfigjson"])
    assert decode_config(payload) == {"quay.io": ("robot", "pw-web-pull-Zq81xv", "")}
    # Same credential, same content: the hash still differs per namespace, and is keyed.
    hashes = {s["metadata"]["annotations"]["pullkeeper.io/content-hash"] for s in secrets.values()}
    assert len(hashes) == len(secrets)
    assert all(h.startswith("hmac-sha256:") for h in hashes)
    # Rendering again changes nothing: GitOps diffs stay empty.
    assert env.admin.ok("GET", "clusters/c1/render") == body
    for item in body["items"]:
        kubernetes_validate.validate(item, "1.32", strict=True)


def test_render_one_namespace_or_project(env: Env) -> None:
    _world(env)
    shop = _secrets(env.admin.ok("GET", "clusters/c1/render", params={"namespace": "shop"}))
    assert sorted(shop) == [("shop", "shop-only"), ("shop", "web-pull"), ("shop", "wide")]
    web = env.admin.ok("GET", "clusters/c1/render", params={"project": "web"})
    assert web["namespaces"] == ["cart", "shop"]
    assert {ns for ns, _ in _secrets(web)} == {"cart", "shop"}
    assert_error(
        env.admin.get("clusters/c1/render", params={"namespace": "shop", "project": "web"}),
        422,
        field="namespace",
    )
    assert_error(env.admin.get("clusters/c1/render", params={"namespace": "nowhere"}), 404)


def test_only_admins_and_owners_may_render_and_it_is_audited(env: Env) -> None:
    made = _world(env)
    _, owner = env.quick_user("olga")
    _, member = env.quick_user("max")
    env.member("web", "olga", "owner")
    env.member("web", "max", "member")
    as_owner = env.api(owner)
    own = as_owner.ok("GET", "clusters/c1/render", params={"project": "web"})
    assert {ns for ns, _ in _secrets(own)} == {"cart", "shop"}
    assert as_owner.ok("GET", "clusters/c1/render", params={"namespace": "shop"})["items"]
    assert_error(as_owner.get("clusters/c1/render"), 403, message="only an admin")
    assert_error(as_owner.get("clusters/c1/render", params={"project": "api"}), 404)
    as_member = env.api(member)
    assert_error(as_member.get("clusters/c1/render", params={"project": "web"}), 403)
    assert_error(env.anon.get("clusters/c1/render"), 401)

    events = env.audit(action="secrets.render")
    assert [e["actor"] for e in events].count("olga") == 2
    first = next(e for e in events if e["actor"] == "olga" and e["after"]["project"] == "web")
    rendered = set(first["after"]["credentials"])
    assert rendered == {made["shop-only"]["id"], made["web-pull"]["id"], made["wide"]["id"]}
    assert "pw-" not in str(events)


def test_render_with_service_account_mode(env: Env) -> None:
    _world(env)
    env.admin.ok("PUT", "clusters/c1/policy", json={"service_accounts": ["default", "builder"]})
    env.admin.ok("PUT", "projects/web/policy", json={"service_accounts": ["*"]})
    body = env.admin.ok("GET", "clusters/c1/render")
    accounts = {
        (i["metadata"]["namespace"], i["metadata"]["name"]): i
        for i in body["items"]
        if i["kind"] == "ServiceAccount"
    }
    # web's namespaces: every account, of which only default can be rendered; others: two.
    assert sorted(accounts) == [
        ("billing", "builder"),
        ("billing", "default"),
        ("cart", "default"),
        ("shop", "default"),
        ("tools", "builder"),
        ("tools", "default"),
    ]
    shop = accounts[("shop", "default")]
    assert [e["name"] for e in shop["imagePullSecrets"]] == sorted(
        name
        for ns, name in _secrets({"items": [i for i in body["items"] if i["kind"] == "Secret"]})
        if ns == "shop"
    )
    assert shop["metadata"]["annotations"]["pullkeeper.io/image-pull-secrets"]
    assert sorted(n.split(":")[0] for n in body["notes"]) == ["cart", "shop"]
    for item in accounts.values():
        kubernetes_validate.validate(item, "1.32", strict=True)
