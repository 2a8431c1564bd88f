"""Clusters, projects and namespaces: CRUD and validation."""

from __future__ import annotations

from datetime import datetime

import pytest

from pullkeeper.services import first_run
from tests.server.conftest import Env, assert_error

BAD_LABELS = ["Upper", "under_score", "-lead", "trail-", "dot.ted", "a" * 64, "", "sp ace", "é"]


def _recent(stamp: str) -> None:
    at = datetime.fromisoformat(stamp)
    assert at.tzinfo is not None
    assert abs((datetime.now(at.tzinfo) - at).total_seconds()) < 120


def test_cluster_crud(env: Env) -> None:
    c = env.cluster(
        "prod-eu", description="Production", kubeconfig="/etc/kube/prod", context="prod-ctx"
    )
    assert set(c) == {
        "id",
        "name",
        "description",
        "access",
        "kubeconfig",
        "context",
        "kubeconfig_uploaded",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
    }
    assert (c["name"], c["description"], c["access"], c["kubeconfig"], c["context"]) == (
        "prod-eu",
        "Production",
        "kubeconfig",
        "/etc/kube/prod",
        "prod-ctx",
    )
    assert (c["created_by"], c["updated_by"]) == ("admin", "admin")
    _recent(c["created_at"])
    assert env.admin.ok("GET", "clusters/prod-eu") == c
    assert env.admin.ok("GET", f"clusters/{c['id']}") == c
    incluster = env.cluster("a-local", access="in-cluster")
    assert incluster["access"] == "in-cluster"
    assert [x["name"] for x in env.admin.ok("GET", "clusters")["items"]] == ["a-local", "prod-eu"]

    changed = env.admin.ok("PATCH", "clusters/prod-eu", json={"description": "Prod (EU)"})
    assert changed["description"] == "Prod (EU)"
    assert (changed["id"], changed["name"], changed["kubeconfig"]) == (
        c["id"],
        "prod-eu",
        "/etc/kube/prod",
    )
    renamed = env.admin.ok("PATCH", f"clusters/{c['id']}", json={"name": "prod-west"})
    assert renamed["name"] == "prod-west"
    assert_error(env.admin.get("clusters/prod-eu"), 404)
    assert env.admin.ok("GET", "clusters/prod-west")["description"] == "Prod (EU)"

    assert env.admin.delete("clusters/prod-west").status_code == 204
    assert_error(env.admin.get(f"clusters/{c['id']}"), 404)
    assert_error(env.admin.delete(f"clusters/{c['id']}"), 404)
    assert [x["name"] for x in env.admin.ok("GET", "clusters")["items"]] == ["a-local"]


def test_cluster_validation(env: Env) -> None:
    env.cluster("c1", kubeconfig="/k", context="ctx")
    env.cluster("c2")
    for name in BAD_LABELS:
        assert_error(env.admin.post("clusters", json={"name": name}), 422, field="name")
    assert_error(env.admin.post("clusters", json={"name": "c1"}), 409, field="name")
    assert_error(
        env.admin.post("clusters", json={"name": "c3", "access": "ssh"}), 422, field="access"
    )
    assert_error(
        env.admin.post("clusters", json={"name": "c3", "access": "in-cluster", "kubeconfig": "/k"}),
        422,
        field="kubeconfig",
    )
    assert_error(env.admin.patch("clusters/c2", json={"name": "c1"}), 409, field="name")
    assert_error(env.admin.patch("clusters/c2", json={"name": "C-2"}), 422, field="name")
    assert_error(
        env.admin.patch("clusters/c1", json={"access": "in-cluster"}), 422, field="kubeconfig"
    )
    assert_error(env.admin.patch("clusters/c1", json={"access": "bogus"}), 422, field="access")
    assert_error(env.admin.patch("clusters/nope", json={"description": "x"}), 404)
    # Refused changes changed nothing.
    c1 = env.admin.ok("GET", "clusters/c1")
    assert (c1["access"], c1["kubeconfig"]) == ("kubeconfig", "/k")
    assert [x["name"] for x in env.admin.ok("GET", "clusters")["items"]] == ["c1", "c2"]


def test_project_crud(env: Env) -> None:
    c1 = env.cluster("c1")
    env.cluster("c2")
    p = env.project("web", "c1", description="Web team")
    assert set(p) == {
        "id",
        "name",
        "cluster_id",
        "cluster",
        "description",
        "created_at",
        "created_by",
    }
    assert (p["name"], p["cluster_id"], p["cluster"], p["description"], p["created_by"]) == (
        "web",
        c1["id"],
        "c1",
        "Web team",
        "admin",
    )
    by_id = env.admin.ok(
        "POST", "projects", json={"name": "api", "cluster": c1["id"]}
    )  # cluster by id
    assert by_id["cluster"] == "c1"
    other = env.project("web", "c2")  # the same name in another cluster is fine
    assert other["cluster"] == "c2"

    assert env.admin.ok("GET", f"projects/{p['id']}") == p
    listed = env.admin.ok("GET", "projects")["items"]
    assert [(x["cluster"], x["name"]) for x in listed] == [
        ("c1", "api"),
        ("c1", "web"),
        ("c2", "web"),
    ]
    in_c2 = env.admin.ok("GET", "projects", params={"cluster": "c2"})["items"]
    assert [x["id"] for x in in_c2] == [other["id"]]

    changed = env.admin.ok("PATCH", f"projects/{p['id']}", json={"description": "Web & edge"})
    assert (changed["description"], changed["name"]) == ("Web & edge", "web")
    renamed = env.admin.ok("PATCH", f"projects/{p['id']}", json={"name": "frontend"})
    assert renamed["name"] == "frontend"
    assert_error(env.admin.patch(f"projects/{p['id']}", json={"name": "api"}), 409, field="name")
    assert_error(env.admin.patch(f"projects/{p['id']}", json={"name": "Bad!"}), 422, field="name")

    assert env.admin.delete(f"projects/{p['id']}").status_code == 204
    assert_error(env.admin.get(f"projects/{p['id']}"), 404)
    assert_error(env.admin.delete(f"projects/{p['id']}"), 404)
    assert len(env.admin.ok("GET", "projects")["items"]) == 2


def test_project_validation(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    for name in BAD_LABELS:
        r = env.admin.post("projects", json={"name": name, "cluster": "c1"})
        assert_error(r, 422, field="name")
    assert_error(
        env.admin.post("projects", json={"name": "web", "cluster": "c1"}), 409, field="name"
    )
    assert_error(env.admin.post("projects", json={"name": "x", "cluster": "nope"}), 404)
    assert_error(env.admin.post("projects", json={"name": "x"}), 422, field="cluster")
    assert len(env.admin.ok("GET", "projects")["items"]) == 1


def test_namespace_crud(env: Env) -> None:
    c1 = env.cluster("c1")
    env.cluster("c2")
    web = env.project("web")
    api = env.project("api")
    env.project("other", "c2")

    ns = env.namespace("shop", "web")
    assert set(ns) == {"id", "name", "cluster_id", "cluster", "project_id", "project"}
    assert (ns["name"], ns["cluster_id"], ns["cluster"], ns["project_id"], ns["project"]) == (
        "shop",
        c1["id"],
        "c1",
        web["id"],
        "web",
    )
    env.namespace("billing", api["id"])  # project by id
    free = env.namespace("tools", None)
    assert (free["project_id"], free["project"]) == (None, None)

    listed = env.admin.ok("GET", "clusters/c1/namespaces")["items"]
    assert [(n["name"], n["project"]) for n in listed] == [
        ("billing", "api"),
        ("shop", "web"),
        ("tools", None),
    ]
    only_web = env.admin.ok("GET", "clusters/c1/namespaces", params={"project": "web"})["items"]
    assert [n["name"] for n in only_web] == ["shop"]
    assert env.admin.ok("GET", "clusters/c2/namespaces")["items"] == []

    # PUT again moves it (the id stays), and null takes it out of any project.
    moved = env.namespace("shop", "api")
    assert (moved["id"], moved["project"]) == (ns["id"], "api")
    out = env.namespace("shop", None)
    assert (out["id"], out["project_id"]) == (ns["id"], None)

    assert env.admin.delete("clusters/c1/namespaces/shop").status_code == 204
    assert_error(env.admin.delete("clusters/c1/namespaces/shop"), 404)
    assert [n["name"] for n in env.admin.ok("GET", "clusters/c1/namespaces")["items"]] == [
        "billing",
        "tools",
    ]


def test_namespace_validation(env: Env) -> None:
    env.cluster("c1")
    env.cluster("c2")
    env.project("other", "c2")
    for name in ["Upper", "under_score", "-x", "x-", "dot.ted", "a" * 64]:
        r = env.admin.put(f"clusters/c1/namespaces/{name}", json={"project": None})
        assert_error(r, 422, field="name")
    assert_error(env.admin.put("clusters/c1/namespaces/ns", json={"project": "nope"}), 404)
    # A project of another cluster is not a project of this one.
    assert_error(env.admin.put("clusters/c1/namespaces/ns", json={"project": "other"}), 404)
    assert_error(env.admin.put("clusters/nope/namespaces/ns", json={"project": None}), 404)
    assert_error(env.admin.get("clusters/nope/namespaces"), 404)
    assert env.admin.ok("GET", "clusters/c1/namespaces")["items"] == []


@pytest.mark.parametrize("what", ["project", "cluster"])
def test_deletes_cascade(env: Env, what: str) -> None:
    env.cluster("c1")
    env.cluster("c2")
    env.project("web")
    env.namespace("shop", "web")
    env.cred("proj-cred", scope="project", project="web")
    ns_cred = env.cred("ns-cred", scope="namespace", namespace="shop")
    wide = env.cred("wide", scope="cluster")
    env.cred("elsewhere", cluster="c2")
    env.admin.ok("PUT", "projects/web/policy", json={"always_pull": True})
    _, token = env.user("dev")
    env.member("web", "dev", "owner")
    assert env.api(token).ok("GET", "me")["projects"] != {}

    if what == "project":
        assert env.admin.delete("projects/web").status_code == 204
        names = sorted(c["name"] for c in env.admin.ok("GET", "credentials")["items"])
        # The project's own credentials go; the namespace (and what is scoped to it) stays.
        assert names == ["elsewhere", "ns-cred", "wide"]
        ns = env.admin.ok("GET", "clusters/c1/namespaces")["items"]
        assert [(n["name"], n["project_id"]) for n in ns] == [("shop", None)]
        assert env.admin.ok("GET", f"credentials/{ns_cred['id']}")["namespace"] == "shop"
        assert env.api(token).ok("GET", "me")["projects"] == {}
    else:
        assert env.admin.delete("clusters/c1").status_code == 204
        names = [c["name"] for c in env.admin.ok("GET", "credentials")["items"]]
        assert names == ["elsewhere"]
        assert_error(env.admin.get(f"credentials/{wide['id']}"), 404)
        assert env.admin.ok("GET", "projects")["items"] == []
        assert env.api(token).ok("GET", "me")["projects"] == {}


def test_a_namespace_holding_credentials_stays(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    env.namespace("shop", "web")
    c = env.cred("in-shop", scope="namespace", namespace="shop")
    assert_error(env.admin.delete("clusters/c1/namespaces/shop"), 409, field="name")
    assert [n["name"] for n in env.admin.ok("GET", "clusters/c1/namespaces")["items"]] == ["shop"]
    assert env.admin.delete(f"credentials/{c['id']}").status_code == 204
    assert env.admin.delete("clusters/c1/namespaces/shop").status_code == 204


def test_a_project_name_in_several_clusters_needs_the_id(env: Env) -> None:
    env.cluster("c1")
    env.cluster("c2")
    one = env.project("web", "c1")
    two = env.project("web", "c2")
    assert_error(env.admin.get("projects/web"), 409, field="project")
    assert env.admin.ok("GET", f"projects/{two['id']}")["cluster"] == "c2"
    # Within a cluster the name is unique again.
    env.namespace("shop", "web", cluster="c1")
    ns = env.admin.ok("GET", "clusters/c1/namespaces", params={"project": "web"})["items"]
    assert [(n["name"], n["project_id"]) for n in ns] == [("shop", one["id"])]
    # A user who sees only one of them is not told the other exists.
    _, token = env.user("dev")
    env.member(one["id"], "dev", "member")
    assert env.api(token).ok("GET", "projects/web")["id"] == one["id"]


def test_a_cluster_that_cannot_be_reached_names_its_files_to_admins_only(env: Env) -> None:
    """The workloads of a cluster whose kubeconfig is missing: the admin reads which file, a
    member of its project reads that a file on the server is at fault, never its path."""
    place = "/srv/no-such-place/kube.yaml"
    env.cluster("c1", kubeconfig=place)
    project = env.project("p1")["id"]
    env.namespace("web", project)
    _, token = env.user("bob")
    env.member(project, "bob", "member")
    as_admin = env.admin.get("workloads", params={"cluster": "c1"})
    assert as_admin.status_code == 409 and place in as_admin.json()["error"]["message"]
    as_member = env.api(token).get("workloads", params={"cluster": "c1"})
    assert as_member.status_code == 409, as_member.text
    message = as_member.json()["error"]["message"]
    assert "cluster 'c1' cannot be reached" in message and "(a file on the server)" in message
    assert "no-such-place" not in message


def test_the_first_run_guide_ends_with_the_first_registry(env: Env) -> None:
    """A registry of cluster scope needs no project: once one exists the server is set up."""
    with env.server.reading() as session:
        assert first_run.steps_left(session) == {
            "done": {"cluster": False, "project": False, "registry": False},
            "next": "cluster",
            "admins": ["admin"],
        }
    env.cluster("c1")
    with env.server.reading() as session:
        left = first_run.steps_left(session)
        assert left is not None and left["next"] == "project"
    env.cred("everywhere")
    with env.server.reading() as session:
        assert first_run.steps_left(session) is None
