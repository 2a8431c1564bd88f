"""Credentials: providers, scopes, names, supersession, edits, state, deletion, listing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from pullkeeper.store.models import Credential
from tests.server.conftest import Env, assert_error

HUB = "https://index.docker.io/v1/"
GCR_KEY = json.dumps(
    {
        "type": "service_account",
        "project_id": "acme",
        "client_email": "puller@acme.iam.gserviceaccount.com",
        "private_key": (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN-gcr-key-7Rt\n-----END PRIVATE KEY-----\n"
        ),
    }
)

# provider, server given, username given, password -> server and username stored.
ACCEPTED: list[tuple[str, str | None, str, str, str, str]] = [
    ("dockerhub", None, "hubuser", "pw-hub-1aQ", HUB, "hubuser"),
    ("dockerhub", HUB, "hubuser", "pw-hub-2aQ", HUB, "hubuser"),
    ("quay", None, "org+robot", "pw-quay-1aQ", "quay.io", "org+robot"),
    ("quay", "quay.io", "org+robot", "pw-quay-2aQ", "quay.io", "org+robot"),
    ("ghcr", None, "octocat", "ghp_pw-ghcr-1aQ", "ghcr.io", "octocat"),
    ("gitlab", None, "deploy-token", "pw-gitlab-1aQ", "registry.gitlab.com", "deploy-token"),
    ("gitlab", "gitlab.example.com:5050", "dt", "pw-gitlab-2aQ", "gitlab.example.com:5050", "dt"),
    ("harbor", "harbor.example.com", "robot$ci", "pw-harbor-1aQ", "harbor.example.com", "robot$ci"),
    ("artifactory", "acme.jfrog.io", "ci", "pw-jfrog-1aQ", "acme.jfrog.io", "ci"),
    (
        "ecr",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "",
        "pw-ecr-1aQ",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "AWS",
    ),
    (
        "ecr",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "AWS",
        "pw-ecr-2aQ",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "AWS",
    ),
    ("gcr", None, "", GCR_KEY, "gcr.io", "_json_key"),
    ("gcr", "eu.gcr.io", "_json_key", GCR_KEY, "eu.gcr.io", "_json_key"),
    ("gcr", "europe-west1-docker.pkg.dev", "", GCR_KEY, "europe-west1-docker.pkg.dev", "_json_key"),
    ("acr", "acmeprod.azurecr.io", "sp-app-id", "pw-acr-1aQ", "acmeprod.azurecr.io", "sp-app-id"),
    ("ibm", None, "", "pw-ibm-1aQ", "icr.io", "iamapikey"),
    ("ibm", "de.icr.io", "iamapikey", "pw-ibm-2aQ", "de.icr.io", "iamapikey"),
    ("ocir", "fra.ocir.io", "tenancy/user", "pw-ocir-1aQ", "fra.ocir.io", "tenancy/user"),
    ("custom", "registry.local:5000", "ci", "pw-custom-1aQ", "registry.local:5000", "ci"),
    ("custom", "10.0.0.5:5000", "ci", "pw-custom-2aQ", "10.0.0.5:5000", "ci"),
    ("custom", "[fd00::5]:5000", "ci", "pw-custom-3aQ", "[fd00::5]:5000", "ci"),
]

# provider, server, username, password -> the field the 422 names.
REFUSED: list[tuple[str, str | None, str, str, str]] = [
    ("dockerhub", "docker.io", "u", "pw-refused-1", "server"),
    ("dockerhub", "index.docker.io", "u", "pw-refused-1", "server"),
    ("quay", "https://quay.io", "u", "pw-refused-1", "server"),
    ("quay", "quay.example.com", "u", "pw-refused-1", "server"),
    ("ghcr", "ghcr.io:443", "u", "pw-refused-1", "server"),
    ("custom", "https://x", "u", "pw-refused-1", "server"),
    ("custom", "https://registry.example.com", "u", "pw-refused-1", "server"),
    ("custom", "http://registry.example.com", "u", "pw-refused-1", "server"),
    ("custom", "registry.example.com/team", "u", "pw-refused-1", "server"),
    ("custom", None, "u", "pw-refused-1", "server"),
    ("custom", "", "u", "pw-refused-1", "server"),
    ("harbor", None, "u", "pw-refused-1", "server"),
    ("ecr", None, "", "pw-refused-1", "server"),
    ("ecr", "ecr.amazonaws.com", "", "pw-refused-1", "server"),
    ("ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "bob", "pw-refused-1", "username"),
    ("gcr", None, "", "not-a-json-key", "password"),
    ("gcr", None, "", json.dumps({"client_email": "x@y"}), "password"),
    ("gcr", None, "", json.dumps(["private_key", "client_email"]), "password"),
    ("gcr", None, "bob", GCR_KEY, "username"),
    ("gcr", "gcr.example.com", "", GCR_KEY, "server"),
    ("acr", None, "u", "pw-refused-1", "server"),
    ("acr", "Acme.azurecr.io", "u", "pw-refused-1", "server"),
    ("ibm", None, "bob", "pw-refused-1", "username"),
    ("ocir", "ocir.io", "u", "pw-refused-1", "server"),
    ("custom", "registry.example.com", "", "pw-refused-1", "username"),
    ("custom", "registry.example.com", "u", "", "password"),
    ("nexus", "registry.example.com", "u", "pw-refused-1", "provider"),
]


def _body(name: str, **kw: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "cluster": "c1",
        "scope": "cluster",
        "provider": "custom",
        "server": "registry.example.com",
        "username": "robot",
        "password": f"pw-{name}-Zq81xv",
    }
    body.update(kw)
    return body


def test_every_provider_with_its_rules(env: Env, subtests: pytest.Subtests) -> None:
    env.cluster("c1")
    for i, (provider, server, username, password, want_server, want_user) in enumerate(ACCEPTED):
        with subtests.test(provider=provider, server=server):
            body = _body(f"ok-{i}", provider=provider, server=server, username=username)
            body["password"] = password
            if server is None:
                del body["server"]
            c = env.admin.ok("POST", "credentials", json=body)
            assert (c["provider"], c["server"], c["username"]) == (provider, want_server, want_user)
            assert env.secret(c["id"]) == {want_server: (want_user, password, "")}
    for i, (provider, server, username, password, field) in enumerate(REFUSED):
        with subtests.test(refused=provider, server=server, username=username):
            body = _body(f"no-{i}", provider=provider, server=server, username=username)
            body["password"] = password
            assert_error(env.admin.post("credentials", json=body), 422, "invalid", field=field)
    assert env.admin.ok("GET", "credentials")["total"] == len(ACCEPTED)


def test_three_scopes(env: Env) -> None:
    c1 = env.cluster("c1")
    web = env.project("web")
    env.namespace("shop", "web")
    ns = env.cred("in-shop", scope="namespace", namespace="shop", email="ops@example.com")
    assert set(ns) == {
        "id",
        "name",
        "cluster_id",
        "cluster",
        "scope",
        "project_id",
        "project",
        "namespace",
        "provider",
        "server",
        "username",
        "email",
        "description",
        "state",
        "adopt",
        "token_hosts",
        "superseded_by",
        "effective",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "last_check",
        "identity",
    }
    assert ns["last_check"] is None and ns["adopt"] is False and ns["token_hosts"] == []
    assert ns["identity"] is None  # a static login
    assert "password" not in json.dumps(ns)
    assert (ns["scope"], ns["cluster_id"], ns["cluster"], ns["namespace"]) == (
        "namespace",
        c1["id"],
        "c1",
        "shop",
    )
    assert (ns["email"], ns["state"], ns["effective"], ns["superseded_by"]) == (
        "ops@example.com",
        "active",
        True,
        None,
    )
    assert (ns["created_by"], ns["updated_by"]) == ("admin", "admin")
    pr = env.cred("in-web", scope="project", project="web")
    assert (pr["scope"], pr["project_id"], pr["project"], pr["namespace"]) == (
        "project",
        web["id"],
        "web",
        None,
    )
    pr2 = env.cred("in-web-by-id", scope="project", project=web["id"], server="r2.example.com")
    assert pr2["project_id"] == web["id"]
    cl = env.cred("everywhere", scope="cluster")
    assert (cl["scope"], cl["project_id"], cl["project"], cl["namespace"]) == (
        "cluster",
        None,
        None,
        None,
    )
    for got in (ns, pr, cl):
        assert env.admin.ok("GET", f"credentials/{got['id']}") == got


def test_scope_validation(env: Env) -> None:
    env.cluster("c1")
    env.cluster("c2")
    env.project("web")
    env.project("far", "c2")
    env.namespace("shop", "web")
    post = env.admin.post
    assert_error(post("credentials", json=_body("a", scope="global")), 422, field="scope")
    assert_error(post("credentials", json=_body("a", scope="project")), 422, field="project")
    assert_error(post("credentials", json=_body("a", scope="namespace")), 422, field="namespace")
    assert_error(
        post("credentials", json=_body("a", scope="namespace", namespace="unknown")),
        422,
        field="namespace",
    )
    assert_error(
        post("credentials", json=_body("a", scope="namespace", namespace="Bad_NS")),
        422,
        field="namespace",
    )
    assert_error(post("credentials", json=_body("a", scope="project", project="nope")), 404)
    # A project of another cluster is not found in this one.
    assert_error(post("credentials", json=_body("a", scope="project", project="far")), 404)
    assert_error(post("credentials", json=_body("a", cluster="nope")), 404)
    # No cluster at all is the request's fault, as on the page's form.
    assert_error(post("credentials", json=_body("a", cluster="")), 422, field="cluster")
    for name in ["Upper", "under_score", "-x", "x-", "a" * 254, "", "a..b"]:
        assert_error(post("credentials", json=_body(name)), 422, field="name")
    assert env.admin.ok("GET", "credentials")["total"] == 0
    # A subdomain (dots) is a valid Secret name.
    assert env.cred("registry.example.com")["name"] == "registry.example.com"


def test_names_are_unique_where_secrets_land_together(env: Env) -> None:
    env.cluster("c1")
    env.cluster("c2")
    env.project("web")
    env.project("api")
    env.namespace("shop", "web")
    env.namespace("cart", "web")
    env.namespace("billing", "api")
    env.namespace("tools", None)

    def post(name: str, **kw: Any) -> Any:
        return env.admin.post("credentials", json=_body(name, **kw))

    env.cred("site", scope="namespace", namespace="shop")
    # The project's Secrets land in shop too.
    assert_error(post("site", scope="project", project="web"), 409, field="name")
    # So do the cluster's.
    assert_error(post("site", scope="cluster"), 409, field="name")
    assert_error(post("site", scope="namespace", namespace="shop"), 409, field="name")
    # Another namespace of the same project, another project, a namespace outside projects,
    # another cluster: no Secret of theirs meets shop's.
    env.cred("site", scope="namespace", namespace="cart")
    env.cred("site", scope="project", project="api")
    env.cred("site", scope="namespace", namespace="tools")
    env.cred("site", cluster="c2", scope="cluster")

    env.cred("team", scope="project", project="web")
    assert_error(post("team", scope="namespace", namespace="shop"), 409, field="name")
    assert_error(post("team", scope="namespace", namespace="cart"), 409, field="name")
    assert_error(post("team", scope="cluster"), 409, field="name")
    env.cred("team", scope="project", project="api")  # the same name in two projects is fine
    env.cred("team", scope="namespace", namespace="tools")

    env.cred("global", scope="cluster")
    for kw in (
        {"scope": "project", "project": "web"},
        {"scope": "namespace", "namespace": "billing"},
        {"scope": "namespace", "namespace": "tools"},
    ):
        assert_error(post("global", **kw), 409, field="name")
    env.cred("global", cluster="c2")

    # Renaming into a taken name is refused the same way; into a free one works.
    other = env.cred("other", scope="namespace", namespace="shop")
    r = env.admin.patch(f"credentials/{other['id']}", json={"name": "team"})
    assert_error(r, 409, field="name")
    assert_error(
        env.admin.patch(f"credentials/{other['id']}", json={"name": "Bad"}), 422, field="name"
    )
    assert env.admin.ok("PATCH", f"credentials/{other['id']}", json={"name": "other-2"})[
        "name"
    ] == ("other-2")
    assert env.admin.ok("GET", "credentials")["total"] == 11


def _get(env: Env, cred: dict[str, Any]) -> tuple[str | None, bool, str]:
    c = env.admin.ok("GET", f"credentials/{cred['id']}")
    return c["superseded_by"], c["effective"], c["state"]


def test_supersession(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    old = env.cred("quay-old", scope="project", project="web", provider="quay", server="quay.io")
    assert _get(env, old) == (None, True, "active")
    new = env.cred("quay-new", scope="project", project="web", provider="quay", server=None)
    assert (new["superseded_by"], new["effective"]) == (None, True)
    assert _get(env, old) == (new["id"], False, "active")
    listed = {c["name"]: c for c in env.admin.ok("GET", "credentials")["items"]}
    assert (listed["quay-old"]["superseded_by"], listed["quay-old"]["effective"]) == (
        new["id"],
        False,
    )
    assert (listed["quay-new"]["superseded_by"], listed["quay-new"]["effective"]) == (None, True)

    # Editing the older one does not make it newer.
    env.admin.ok(
        "PATCH", f"credentials/{old['id']}", json={"description": "x", "password": "pw-renew-8Hk"}
    )
    assert _get(env, old) == (new["id"], False, "active")

    # Deactivating the newer one makes the older effective again, and back.
    env.admin.ok("POST", f"credentials/{new['id']}/deactivate")
    assert _get(env, old) == (None, True, "active")
    assert _get(env, new) == (None, False, "inactive")
    env.admin.ok("POST", f"credentials/{new['id']}/activate")
    assert _get(env, old) == (new["id"], False, "active")
    assert _get(env, new) == (None, True, "active")

    # An inactive credential supersedes nothing.
    env.cred(
        "quay-off",
        scope="project",
        project="web",
        provider="quay",
        server="quay.io",
        active=False,
    )
    assert _get(env, new) == (None, True, "active")

    # The listing filters on the stored state, or on how an active one fares in its slot;
    # counts agree with the page.
    def named(state: str) -> tuple[list[str], int]:
        page = env.admin.ok("GET", "credentials", params={"state": state})
        return [c["name"] for c in page["items"]], page["total"]

    assert named("active") == (["quay-new", "quay-old"], 2)
    assert named("effective") == (["quay-new"], 1)
    assert named("superseded") == (["quay-old"], 1)
    assert named("inactive") == (["quay-off"], 1)
    _, token = env.quick_user("filter-member")
    env.member("web", "filter-member", "member")
    as_member = env.api(token).ok("GET", "credentials", params={"state": "superseded"})
    assert [c["name"] for c in as_member["items"]] == ["quay-old"]
    assert_error(env.admin.get("credentials", params={"state": "newest"}), 422, field="state")

    # Deleting the newer one makes the older effective again.
    assert env.admin.delete(f"credentials/{new['id']}").status_code == 204
    assert _get(env, old) == (None, True, "active")


def test_supersession_is_per_address_and_scope(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    env.project("api")
    env.namespace("shop", "web")
    a = env.cred("a", scope="project", project="web", server="registry.example.com")
    # Other scopes, another project, another address: nothing is superseded.
    env.cred("b", scope="project", project="api", server="registry.example.com")
    env.cred("c", scope="namespace", namespace="shop", server="registry.example.com")
    env.cred("d", scope="cluster", server="registry.example.com")
    env.cred("e", scope="project", project="web", server="registry.example.com:5000")
    env.cred("f", scope="project", project="web", server="registry.example.org")
    assert all(c["effective"] for c in env.admin.ok("GET", "credentials")["items"])
    # The same address written differently is the same address.
    hub = env.cred("hub", scope="project", project="web", provider="dockerhub", server=None)
    hub2 = env.cred("hub-2", scope="project", project="web", server="index.docker.io")
    assert _get(env, hub) == (hub2["id"], False, "active")
    q1 = env.cred("q1", scope="project", project="web", server="quay.io")
    q2 = env.cred("q2", scope="project", project="web", provider="quay", server=None)
    assert _get(env, q1) == (q2["id"], False, "active")
    assert _get(env, a) == (None, True, "active")


def test_supersession_normalizes_a_scheme(env: Env) -> None:
    """`https://quay.io` and `quay.io` are one address (the kubelet's key for both is quay.io).

    The API refuses a scheme in new addresses, so the older record's address is written as a
    record from an earlier import would hold it.
    """
    env.cluster("c1")
    old = env.cred("old-quay", server="quay.io")
    with env.server.transaction() as session:
        session.execute(
            update(Credential).where(Credential.id == old["id"]).values(server="https://quay.io")
        )
    assert env.admin.ok("GET", f"credentials/{old['id']}")["server"] == "https://quay.io"
    new = env.cred("new-quay", provider="quay", server=None)
    assert _get(env, old) == (new["id"], False, "active")


def test_edit_rules(env: Env) -> None:
    env.cluster("c1")
    c = env.cred(
        "web",
        server="registry.example.com",
        username="robot",
        password="pw-first-Qx81",
        email="a@example.com",
        description="first",
    )
    path = f"credentials/{c['id']}"
    assert_error(env.admin.patch(path, json={"server": "other.example.com"}), 422, field="server")
    assert_error(
        env.admin.patch(path, json={"server": "other.example.com", "password": "pw-x-Qx81aa"}),
        422,
        field="server",
    )
    assert_error(env.admin.patch(path, json={"username": "robot2"}), 422, field="password")
    assert_error(env.admin.patch(path, json={"email": "b@example.com"}), 422, field="password")
    unchanged = env.admin.ok("GET", path)
    assert (unchanged["username"], unchanged["email"], unchanged["server"]) == (
        "robot",
        "a@example.com",
        "registry.example.com",
    )
    # The same address again is no change.
    same = env.admin.ok("PATCH", path, json={"server": "registry.example.com"})
    assert same["server"] == "registry.example.com"

    # A description-only edit needs no password, and keeps the secret.
    d = env.admin.ok("PATCH", path, json={"description": "second"})
    assert (d["description"], d["username"], d["updated_by"]) == ("second", "robot", "admin")
    assert env.secret(c["id"]) == {
        "registry.example.com": ("robot", "pw-first-Qx81", "a@example.com")
    }
    # A new password alone.
    env.admin.ok("PATCH", path, json={"password": "pw-second-Qx82"})
    assert env.secret(c["id"]) == {
        "registry.example.com": ("robot", "pw-second-Qx82", "a@example.com")
    }
    # A new login with its password.
    e = env.admin.ok(
        "PATCH",
        path,
        json={"username": "robot2", "email": "b@example.com", "password": "pw-third-Qx83"},
    )
    assert (e["username"], e["email"]) == ("robot2", "b@example.com")
    assert env.secret(c["id"]) == {
        "registry.example.com": ("robot2", "pw-third-Qx83", "b@example.com")
    }
    # Provider rules hold on edits too.
    g = env.cred("gcr", provider="gcr", server=None, username="", password=GCR_KEY)
    r = env.admin.patch(f"credentials/{g['id']}", json={"username": "bob", "password": GCR_KEY})
    assert_error(r, 422, field="username")
    r = env.admin.patch(f"credentials/{g['id']}", json={"password": "pw-not-json-Qx84"})
    assert_error(r, 422, field="password")
    assert env.secret(g["id"]) == {"gcr.io": ("_json_key", GCR_KEY, "")}
    assert_error(env.admin.patch("credentials/nope", json={"description": "x"}), 404)


def test_activate_and_deactivate_keep_the_secret(env: Env) -> None:
    env.cluster("c1")
    c = env.cred("web", password="pw-keep-me-Lm23", email="e@example.com")
    want = {"registry.example.com": ("robot", "pw-keep-me-Lm23", "e@example.com")}
    off = env.admin.ok("POST", f"credentials/{c['id']}/deactivate")
    assert (off["state"], off["effective"], off["superseded_by"]) == ("inactive", False, None)
    assert (off["updated_by"], off["name"], off["username"]) == ("admin", "web", "robot")
    assert env.secret(c["id"]) == want
    # Deactivating again is a no-op.
    assert env.admin.ok("POST", f"credentials/{c['id']}/deactivate")["state"] == "inactive"
    on = env.admin.ok("POST", f"credentials/{c['id']}/activate")
    assert (on["state"], on["effective"]) == ("active", True)
    assert env.secret(c["id"]) == want
    assert_error(env.admin.post("credentials/nope/activate"), 404)
    assert_error(env.admin.post("credentials/nope/deactivate"), 404)
    # Created inactive.
    idle = env.cred("idle", server="idle.example.com", active=False)
    assert (idle["state"], idle["effective"]) == ("inactive", False)


def test_delete_removes_it(env: Env) -> None:
    env.cluster("c1")
    c = env.cred("web")
    keep = env.cred("keep", server="keep.example.com")
    assert env.admin.delete(f"credentials/{c['id']}").status_code == 204
    assert_error(env.admin.get(f"credentials/{c['id']}"), 404)
    assert_error(env.admin.get(f"credentials/{c['id']}/dockerconfigjson"), 404)
    assert_error(env.admin.delete(f"credentials/{c['id']}"), 404)
    assert [x["id"] for x in env.admin.ok("GET", "credentials")["items"]] == [keep["id"]]
    with env.server.transaction() as session:
        assert session.get(Credential, c["id"]) is None
    # Its name is free again.
    assert env.cred("web")["name"] == "web"


def _names(env: Env, **params: Any) -> list[str]:
    page = env.admin.ok("GET", "credentials", params=params)
    names = [c["name"] for c in page["items"]]
    assert page["total"] == len(names), page
    return names


def test_list_filters_and_pagination(env: Env) -> None:
    env.cluster("c1")
    env.cluster("c2")
    env.project("web")
    env.project("api")
    env.project("web", "c2")
    env.namespace("shop", "web")
    env.namespace("billing", "api")
    env.namespace("tools", None)
    env.cred("web-proj", scope="project", project="web")
    env.cred("shop-ns", scope="namespace", namespace="shop", provider="quay", server=None)
    env.cred("billing-ns", scope="namespace", namespace="billing")
    env.cred("wide", provider="dockerhub", server=None)
    env.cred("tools-ns", scope="namespace", namespace="tools", provider="ghcr", server=None)
    env.cred("c2-wide", cluster="c2")
    env.cred("old", server="old.example.com", active=False)
    everything = ["billing-ns", "c2-wide", "old", "shop-ns", "tools-ns", "web-proj", "wide"]

    assert _names(env) == everything
    assert _names(env, cluster="c1") == [n for n in everything if n != "c2-wide"]
    assert _names(env, cluster="c2") == ["c2-wide"]
    assert _names(env, project="web", cluster="c1") == ["shop-ns", "web-proj"]
    assert _names(env, project="api") == ["billing-ns"]
    assert _names(env, cluster="c1", namespace="shop") == ["old", "shop-ns", "web-proj", "wide"]
    assert _names(env, cluster="c1", namespace="tools") == ["old", "tools-ns", "wide"]
    assert _names(env, cluster="c2", namespace="shop") == ["c2-wide"]
    assert_error(env.admin.get("credentials", params={"namespace": "shop"}), 422, field="cluster")
    assert _names(env, provider="quay") == ["shop-ns"]
    assert _names(env, provider="dockerhub") == ["wide"]
    assert _names(env, provider="nothing") == []
    assert _names(env, state="inactive") == ["old"]
    assert _names(env, state="active") == [n for n in everything if n != "old"]
    assert_error(env.admin.get("credentials", params={"state": "on"}), 422, field="state")
    assert _names(env, cluster="c1", provider="custom", state="active") == [
        "billing-ns",
        "web-proj",
    ]
    assert_error(env.admin.get("credentials", params={"cluster": "nope"}), 404)
    assert_error(env.admin.get("credentials", params={"project": "nope"}), 404)

    # q: part of the name; % and _ are plain characters, not wildcards.
    assert _names(env, q="ns") == ["billing-ns", "shop-ns", "tools-ns"]
    assert _names(env, q="wide") == ["c2-wide", "wide"]
    assert _names(env, q="-") == [n for n in everything if "-" in n]
    for literal in ("%", "_", "b_lling", "w%e", "%ns", "\\", "ns%"):
        assert _names(env, q=literal) == [], literal

    page = env.admin.ok("GET", "credentials", params={"limit": 3})
    assert (page["total"], page["limit"], page["offset"]) == (7, 3, 0)
    assert [c["name"] for c in page["items"]] == everything[:3]
    page = env.admin.ok("GET", "credentials", params={"limit": 3, "offset": 3})
    assert (page["total"], [c["name"] for c in page["items"]]) == (7, everything[3:6])
    page = env.admin.ok("GET", "credentials", params={"limit": 3, "offset": 6})
    assert (page["total"], [c["name"] for c in page["items"]]) == (7, ["wide"])
    page = env.admin.ok("GET", "credentials", params={"limit": 3, "offset": 10})
    assert (page["total"], page["items"]) == (7, [])
    page = env.admin.ok("GET", "credentials", params={"q": "ns", "limit": 1, "offset": 1})
    assert (page["total"], [c["name"] for c in page["items"]]) == (3, ["shop-ns"])
    assert env.admin.ok("GET", "credentials")["limit"] == 50


def test_the_secret_download_works_on_a_store_that_has_no_content_hash_key_yet(env: Env) -> None:
    """The key is made on first use, in a write of its own: the download must not hold the
    store's write lock while it is made (on SQLite the two writes would wait on each other)."""
    env.cluster("c1")
    cred = env.cred("first-download")
    r = env.admin.get(f"credentials/{cred['id']}/secret.yaml")
    assert r.status_code == 200, r.text
    assert "kind: Secret" in r.text and r.headers["cache-control"] == "no-store"
