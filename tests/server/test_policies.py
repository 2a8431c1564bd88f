"""Registry policy of clusters and projects."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import Env, assert_error

EMPTY: dict[str, Any] = {
    "default_registry": None,
    "allowlist": None,
    "always_pull": None,
    "service_accounts": None,
    "require_digest": None,
    "forbid_latest": None,
    "mode": None,
    "warnings": [],
}
HUB_WARNING = (
    "Docker Hub is not on the allowlist: images such as nginx (docker.io) will be refused; "
    "add docker.io to allow them"
)


def _setup(env: Env) -> None:
    env.cluster("c1")
    env.project("web")


def test_cluster_and_project_policy(env: Env) -> None:
    _setup(env)
    assert env.admin.ok("GET", "clusters/c1/policy") == EMPTY
    assert env.admin.ok("GET", "projects/web/policy") == EMPTY
    assert env.admin.ok("GET", "projects/web/policy", params={"effective": "true"}) == EMPTY

    cluster = {
        "default_registry": "mirror.example.com",
        "allowlist": ["docker.io", "*.example.com", "quay.io/acme"],
        "always_pull": True,
        "service_accounts": None,
        "require_digest": None,
        "forbid_latest": None,
        "mode": None,
    }
    assert env.admin.ok("PUT", "clusters/c1/policy", json=cluster) == {**cluster, "warnings": []}
    assert env.admin.ok("GET", "clusters/c1/policy") == {**cluster, "warnings": []}
    # The project's own policy is still empty; effectively it is the cluster's.
    assert env.admin.ok("GET", "projects/web/policy") == EMPTY
    assert env.admin.ok("GET", "projects/web/policy", params={"effective": "true"}) == {
        **cluster,
        "warnings": [],
    }

    # Project fields override the cluster's one by one.
    own = env.admin.ok("PUT", "projects/web/policy", json={"always_pull": False})
    assert own == {**EMPTY, "always_pull": False}
    merged = env.admin.ok("GET", "projects/web/policy", params={"effective": True})
    assert merged == {**cluster, "always_pull": False, "warnings": []}
    env.admin.ok("PUT", "projects/web/policy", json={"allowlist": ["harbor.example.com:8443"]})
    merged = env.admin.ok("GET", "projects/web/policy", params={"effective": True})
    assert merged == {
        "default_registry": "mirror.example.com",
        "allowlist": ["harbor.example.com:8443"],
        "always_pull": False,
        "service_accounts": None,
        "require_digest": None,
        "forbid_latest": None,
        "mode": None,
        # Effectively, nginx becomes mirror.example.com/library/nginx, which is refused.
        "warnings": [
            "the default registry mirror.example.com is not on the allowlist: every image "
            "that names no registry (nginx) is rewritten to "
            "mirror.example.com/library/nginx and then refused; add mirror.example.com to "
            "the allowlist"
        ],
    }
    # Fields not in a PUT keep their values.
    assert env.admin.ok("GET", "projects/web/policy") == {
        "default_registry": None,
        "allowlist": ["harbor.example.com:8443"],
        "always_pull": False,
        "service_accounts": None,
        "require_digest": None,
        "forbid_latest": None,
        "mode": None,
        "warnings": [HUB_WARNING],
    }
    # null resets a field: the project inherits it again.
    env.admin.ok("PUT", "projects/web/policy", json={"allowlist": None})
    assert env.admin.ok("GET", "projects/web/policy") == {**EMPTY, "always_pull": False}
    merged = env.admin.ok("GET", "projects/web/policy", params={"effective": True})
    assert merged == {**cluster, "always_pull": False, "warnings": []}
    env.admin.ok("PUT", "clusters/c1/policy", json={"default_registry": None, "always_pull": None})
    assert env.admin.ok("GET", "clusters/c1/policy") == {
        **EMPTY,
        "allowlist": cluster["allowlist"],
    }
    # An empty PUT changes nothing.
    assert env.admin.ok("PUT", "clusters/c1/policy", json={})["allowlist"] == cluster["allowlist"]
    # The project of another cluster is untouched by c1's policy.
    env.cluster("c2")
    env.project("far", "c2")
    assert env.admin.ok("GET", "projects/far/policy", params={"effective": True}) == EMPTY


def test_policy_validation(env: Env) -> None:
    _setup(env)
    for target in ("clusters/c1/policy", "projects/web/policy"):
        for value in (
            "https://mirror.example.com",
            "http://mirror.example.com",
            "mirror.example.com/",
            "mirror.example.com/UPPER",
            "*.example.com",
            "",
            "mirror example.com",
        ):
            r = env.admin.put(target, json={"default_registry": value})
            assert_error(r, 422, field="default_registry")
        for entry in (
            "https://quay.io",
            "*.example.com/team",
            "quay.io/Team",
            "*",
            "",
            "registry.example.com:port",
        ):
            r = env.admin.put(target, json={"allowlist": ["docker.io", entry]})
            assert_error(r, 422, field="allowlist")
        assert_error(env.admin.put(target, json={"allowlist": "docker.io"}), 422, field="allowlist")
        assert_error(env.admin.put(target, json={"always_pull": "maybe"}), 422, field="always_pull")
        # A refused PUT leaves the policy as it was.
        assert env.admin.ok("GET", target) == EMPTY
    ok = {
        "default_registry": "harbor.example.com:8443/dockerhub",
        "allowlist": [
            "index.docker.io",
            "registry.example.com:5000/team/sub",
            "*.corp.example",
            "harbor.example.com:8443/dockerhub",
        ],
    }
    assert env.admin.ok("PUT", "clusters/c1/policy", json=ok)["warnings"] == []
    assert_error(env.admin.get("clusters/nope/policy"), 404)
    assert_error(env.admin.put("projects/nope/policy", json={}), 404)


def test_docker_hub_warning(env: Env) -> None:
    _setup(env)

    def warnings(allowlist: list[str]) -> Any:
        return env.admin.ok("PUT", "clusters/c1/policy", json={"allowlist": allowlist})["warnings"]

    assert warnings(["quay.io", "ghcr.io"]) == [HUB_WARNING]
    assert env.admin.ok("GET", "clusters/c1/policy")["warnings"] == [HUB_WARNING]
    assert warnings(["quay.io", "docker.io"]) == []
    assert warnings(["index.docker.io"]) == []
    assert warnings(["docker.io/library"]) == []
    assert warnings(["*.docker.io"]) == [HUB_WARNING]


def test_policy_puts_are_audited(env: Env) -> None:
    _setup(env)
    web = env.admin.ok("GET", "projects/web")
    env.admin.ok("PUT", "clusters/c1/policy", json={"always_pull": True})
    env.admin.ok("PUT", "clusters/c1/policy", json={"allowlist": ["quay.io"]})
    env.admin.ok("PUT", "projects/web/policy", json={"default_registry": "m.example.com"})
    events = list(reversed(env.audit(action="policy.put")))
    assert len(events) == 3
    first, second, third = events
    assert (first["actor"], first["object_type"], first["project_id"]) == ("admin", "policy", None)
    assert first["before"] is None
    assert first["after"] == {**EMPTY, "always_pull": True}
    assert second["object_id"] == first["object_id"]
    assert second["before"] == {**EMPTY, "always_pull": True}
    assert second["after"] == {
        **EMPTY,
        "always_pull": True,
        "allowlist": ["quay.io"],
        "warnings": [HUB_WARNING],
    }
    assert third["project_id"] == web["id"]
    assert third["object_id"] != first["object_id"]
    assert third["after"] == {**EMPTY, "default_registry": "m.example.com"}


def test_service_account_mode(env: Env) -> None:
    _setup(env)
    on = env.admin.ok(
        "PUT", "clusters/c1/policy", json={"service_accounts": ["default", "builder"]}
    )
    assert on["service_accounts"] == ["default", "builder"]
    env.admin.ok("PUT", "projects/web/policy", json={"service_accounts": ["*"]})
    merged = env.admin.ok("GET", "projects/web/policy", params={"effective": True})
    assert merged["service_accounts"] == ["*"]
    off = env.admin.ok("PUT", "projects/web/policy", json={"service_accounts": []})
    assert off["service_accounts"] == []
    for bad, words in (
        (["*", "default"], "stands alone"),
        (["Not_A_Name"], "not a ServiceAccount"),
    ):
        assert_error(
            env.admin.put("clusters/c1/policy", json={"service_accounts": bad}),
            422,
            field="service_accounts",
            message=words,
        )
    assert env.admin.ok("GET", "clusters/c1/policy")["service_accounts"] == ["default", "builder"]


def test_admission_rules(env: Env) -> None:
    _setup(env)
    cluster = env.admin.ok(
        "PUT",
        "clusters/c1/policy",
        json={"require_digest": True, "forbid_latest": True, "mode": "warn"},
    )
    assert (cluster["require_digest"], cluster["forbid_latest"], cluster["mode"]) == (
        True,
        True,
        "warn",
    )
    env.admin.ok("PUT", "projects/web/policy", json={"mode": "enforce", "require_digest": False})
    merged = env.admin.ok("GET", "projects/web/policy", params={"effective": True})
    assert (merged["require_digest"], merged["forbid_latest"], merged["mode"]) == (
        False,
        True,
        "enforce",
    )
    assert_error(
        env.admin.put("clusters/c1/policy", json={"mode": "deny"}),
        422,
        field="mode",
        message="enforce, warn, audit",
    )
