"""Pull checks and credential verification done by the server, against a real token registry.

The server holds the secrets; the API answers with causes and messages only, and each
credential keeps the result of its last check. Runs on SQLite and PostgreSQL like the
rest of the server suite (`env` comes from tests/server/conftest.py, through this
directory's conftest).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pullkeeper.store.models import CredentialCheck
from tests.integration.conftest import isolated_env, pk
from tests.registry.servers import TokenRegistry
from tests.registry.token_server import TokenServer
from tests.server.conftest import Env, assert_error


def _trust(env: Env, registry: TokenRegistry) -> None:
    """Give the server the registry's CA, where it looks for it: DATA/certs.d/HOST/ca.crt."""
    assert registry.ca_file is not None
    target = env.data / "certs.d" / registry.host
    target.mkdir(parents=True)
    shutil.copyfile(registry.ca_file, target / "ca.crt")


def _world(env: Env, registry: TokenRegistry) -> dict[str, dict[str, Any]]:
    """shop (project web) gets, in kubelet order: a wrong password, alice, bob."""
    env.cluster("c1")
    web = env.project("web")
    env.namespace("shop", web["id"])
    host = registry.host
    alice, bob = registry.credentials, registry.bob
    return {
        "wrong": env.cred(
            "wrong",
            scope="namespace",
            namespace="shop",
            server=host,
            username=alice.username,
            password="not-alices-password-91",
        ),
        "alice": env.cred(
            "alice",
            scope="project",
            project=web["id"],
            server=host,
            username=alice.username,
            password=alice.password,
        ),
        "bob": env.cred("bob", server=host, username=bob.username, password=bob.password),
    }


def _last(env: Env, cred: dict[str, Any]) -> dict[str, Any] | None:
    result: dict[str, Any] | None = env.admin.ok("GET", f"credentials/{cred['id']}")["last_check"]
    return result


def test_a_check_tries_the_kubelets_order_and_records_each_result(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _trust(env, token_registry)
    creds = _world(env, token_registry)
    image = token_registry.image("team-a/app:v1")
    assert all(_last(env, c) is None for c in creds.values())

    body = {"image": image.reference, "cluster": "c1", "namespace": "shop"}
    report = env.admin.ok("POST", "checks", json=body)
    assert (report["ok"], report["digest"], report["platforms"]) == (
        True,
        image.digest,
        ["linux/amd64"],
    )
    assert [(a["source"], a["ok"], a["cause"]) for a in report["attempts"]] == [
        ("wrong", False, "unauthorized"),
        ("alice", True, None),
    ]
    assert "wrong user name or password" in report["attempts"][0]["message"]
    assert report["not_tried"] == 1
    assert (report["cluster"], report["namespace"], report["pull_policy"]) == (
        "c1",
        "shop",
        "IfNotPresent",
    )
    wrong, alice = _last(env, creds["wrong"]), _last(env, creds["alice"])
    assert wrong is not None and (wrong["status"], wrong["cause"]) == ("failing", "unauthorized")
    assert alice is not None and (alice["status"], alice["cause"]) == ("ok", None)
    assert _last(env, creds["bob"]) is None  # not tried: the kubelet stops at alice

    body["all"] = True
    report = env.admin.ok("POST", "checks", json=body)
    assert [(a["source"], a["cause"]) for a in report["attempts"]] == [
        ("wrong", "unauthorized"),
        ("alice", None),
        ("bob", "denied"),
    ]
    assert "has no access to team-a/app" in report["attempts"][2]["message"]
    bob = _last(env, creds["bob"])
    assert bob is not None and (bob["status"], bob["cause"]) == ("failing", "denied")
    # A check is not an edit of the credential.
    shown = env.admin.ok("GET", f"credentials/{creds['bob']['id']}")
    assert shown["updated_at"] == creds["bob"]["updated_at"]


def test_platforms_policy_and_the_allowlist(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _trust(env, token_registry)
    _world(env, token_registry)
    multi = token_registry.image("team-a/multi:v1")
    body = {"image": multi.reference, "cluster": "c1", "namespace": "shop"}
    report = env.admin.ok("POST", "checks", json=body | {"platform": "linux/arm64"})
    assert report["ok"] and report["platform_available"]
    assert report["platform_digest"] == multi.platform_digests["linux/arm64/v8"]
    assert sorted(report["platforms"]) == sorted(multi.platform_digests)
    report = env.admin.ok("POST", "checks", json=body | {"platform": "linux/s390x"})
    assert (report["ok"], report["platform_available"]) == (False, False)
    assert "has no linux/s390x image" in report["error"]["message"]

    env.admin.ok("PUT", "clusters/c1/policy", json={"always_pull": True})
    assert env.admin.ok("POST", "checks", json=body)["pull_policy"] == "Always"

    web = env.admin.ok("GET", "projects")["items"][0]["id"]
    env.admin.ok("PUT", f"projects/{web}/policy", json={"allowlist": ["quay.io"]})
    before = token_server.request_count()
    report = env.admin.ok("POST", "checks", json=body)
    assert (report["ok"], report["attempts"], report["error"]["cause"]) == (
        False,
        [],
        "not_allowed",
    )
    assert "which is not on the allowlist" in report["error"]["message"]
    assert (
        "the admission webhook of namespace shop would refuse the pod"
        in (report["error"]["message"])
    )
    assert token_server.request_count() == before  # refused before contacting anyone


def test_the_check_pulls_what_admission_makes_of_the_image(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    """The default registry rewrites an image that names none before any credential is
    matched, as the API server runs mutating before validating admission."""
    _trust(env, token_registry)
    _world(env, token_registry)
    token_registry.image("team-a/app:v1")
    env.admin.ok("PUT", "clusters/c1/policy", json={"default_registry": token_registry.host})
    body = {"image": "team-a/app:v1", "cluster": "c1", "namespace": "shop"}
    report = env.admin.ok("POST", "checks", json=body)
    assert report["ok"], report
    assert (report["image"], report["pulled"], report["rewritten"]) == (
        "team-a/app:v1",
        f"{token_registry.host}/team-a/app:v1",
        True,
    )
    assert [(a["source"], a["ok"]) for a in report["attempts"]] == [
        ("wrong", False),
        ("alice", True),
    ]
    # In warn mode a refused image is let in: the check goes on and says why it warns.
    env.admin.ok("PUT", "clusters/c1/policy", json={"allowlist": ["quay.io"], "mode": "warn"})
    report = env.admin.ok("POST", "checks", json=body)
    assert report["ok"] and len(report["warnings"]) == 1
    assert "which is not on the allowlist" in report["warnings"][0]


def test_a_pull_policy_that_does_not_pull_asks_no_registry(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _trust(env, token_registry)
    _world(env, token_registry)
    image = token_registry.image("team-a/app:v1").reference
    body = {"image": image, "cluster": "c1", "namespace": "shop"}
    before = token_server.request_count()
    never = env.admin.ok("POST", "checks", json=body | {"pull_policy": "Never"})
    assert (never["ok"], never["attempts"], never["error"]["cause"]) == (False, [], "never_pulled")
    assert "ErrImageNeverPull" in never["error"]["message"]
    for policy in ("Never", "IfNotPresent"):
        there = env.admin.ok("POST", "checks", json=body | {"pull_policy": policy, "on_node": True})
        assert (there["ok"], there["from_node"], there["attempts"]) == (True, True, []), policy
    assert token_server.request_count() == before
    # Always asks the registry even for an image on the node: the kubelet resolves the tag.
    always = env.admin.ok("POST", "checks", json=body | {"pull_policy": "Always", "on_node": True})
    assert always["from_node"] is False and [a["ok"] for a in always["attempts"]] == [False, True]
    assert token_server.request_count() > before


def test_an_untrusted_registry_is_reported_not_retried(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _world(env, token_registry)  # no CA given to the server
    body = {"image": token_registry.image("team-a/app:v1").reference}
    report = env.admin.ok("POST", "checks", json=body | {"cluster": "c1", "namespace": "shop"})
    assert report["ok"] is False and report["error"]["cause"] == "tls_untrusted"
    assert len(report["attempts"]) == 1 and report["not_tried"] == 2
    assert "CN=" in report["error"]["message"]


def test_an_untrusted_registrys_hint_is_the_servers_way_and_works(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    """`registry trust` alone writes the CLI user's store, which the server does not read:
    the hint names the server's DATA/certs.d (never its path), and doing what it says is
    enough for the next check."""
    _world(env, token_registry)  # no CA given to the server
    host = token_registry.host
    body = {"image": token_registry.image("team-a/app:v1").reference}
    body |= {"cluster": "c1", "namespace": "shop"}
    message = env.admin.ok("POST", "checks", json=body)["error"]["message"]
    command = f"pullkeeper registry trust {host} --write-certs-d DATA/certs.d"
    assert f"the server's DATA/certs.d/{host}/ca.crt" in message
    assert f"`{command}`" in message
    assert str(env.data) not in message
    assert "--ca-file" not in message

    args = command.replace("DATA", str(env.data)).split()[1:]
    trusted = pk(*args, "--yes", env=isolated_env(tmp_path / "home"))
    assert trusted.returncode == 0, trusted.describe()
    assert env.admin.ok("POST", "checks", json=body)["ok"] is True


def test_verify_logs_in_with_the_stored_credential(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _trust(env, token_registry)
    creds = _world(env, token_registry)
    ok = env.admin.ok("POST", f"credentials/{creds['alice']['id']}/verify")
    assert ok["last_check"]["status"] == "ok" and ok["name"] == "alice"
    bad = env.admin.ok("POST", f"credentials/{creds['wrong']['id']}/verify")
    assert (bad["last_check"]["status"], bad["last_check"]["cause"]) == ("failing", "unauthorized")
    # bob's login is valid, even though he cannot read team-a: verify is `docker login`.
    assert (
        env.admin.ok("POST", f"credentials/{creds['bob']['id']}/verify")["last_check"]["status"]
        == "ok"
    )

    web = env.admin.ok("GET", "projects")["items"][0]["id"]
    _, member = env.user("mia")
    _, viewer = env.user("vic")
    env.admin.ok("PUT", f"projects/{web}/members/mia", json={"role": "member"})
    env.admin.ok("PUT", f"projects/{web}/members/vic", json={"role": "viewer"})
    assert env.api(member).ok("POST", f"credentials/{creds['alice']['id']}/verify")["last_check"]
    assert_error(env.api(viewer).post(f"credentials/{creds['alice']['id']}/verify"), 403)
    assert_error(
        env.api(viewer).post("checks", json={"image": "x", "cluster": "c1", "namespace": "shop"}),
        403,
    )
    # The cluster-wide credential is the admin's to verify; members get 403, outsiders 404.
    assert_error(env.api(member).post(f"credentials/{creds['bob']['id']}/verify"), 403)
    _, outsider = env.user("oz")
    assert_error(env.api(outsider).post(f"credentials/{creds['alice']['id']}/verify"), 404)


def test_each_credential_keeps_its_last_checks(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _trust(env, token_registry)
    creds = _world(env, token_registry)
    wrong, alice = creds["wrong"]["id"], creds["alice"]["id"]
    image = token_registry.image("team-a/app:v1").reference
    env.admin.ok("POST", f"credentials/{alice}/verify")
    env.admin.ok("POST", "checks", json={"image": image, "cluster": "c1", "namespace": "shop"})

    # The pull check tried wrong, then alice: each got an entry, newest first.
    [pulled] = env.admin.ok("GET", f"credentials/{wrong}/checks")["items"]
    assert (pulled["kind"], pulled["image"], pulled["by"], pulled["status"], pulled["cause"]) == (
        "pull",
        image,
        "admin",
        "failing",
        "unauthorized",
    )
    assert pulled["message"]
    latest, first = env.admin.ok("GET", f"credentials/{alice}/checks")["items"]
    assert (latest["kind"], latest["status"], first["kind"], first["status"]) == (
        "pull",
        "ok",
        "login",
        "ok",
    )
    assert first["image"] is None and latest["at"] >= first["at"]

    # Only the last 20 are kept; whoever sees the credential sees them; deleting it drops them.
    for _ in range(22):
        env.admin.ok("POST", f"credentials/{wrong}/verify")
    kept = env.admin.ok("GET", f"credentials/{wrong}/checks")["items"]
    assert len(kept) == 20 and all(c["kind"] == "login" for c in kept)
    _, member = env.user("mia")
    env.member("web", "mia", "member")
    assert len(env.api(member).ok("GET", f"credentials/{wrong}/checks")["items"]) == 20
    _, outsider = env.user("oz")
    assert_error(env.api(outsider).get(f"credentials/{wrong}/checks"), 404)
    assert "not-alices-password-91" not in str(kept)
    assert env.admin.delete(f"credentials/{wrong}").status_code == 204
    with env.server.reading() as session:
        left = session.scalar(
            select(func.count())
            .select_from(CredentialCheck)
            .where(CredentialCheck.credential_id == wrong)
        )
    assert left == 0


def test_check_with_a_credential_file_instead_of_a_namespace(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    _trust(env, token_registry)
    _world(env, token_registry)
    alice, host = token_registry.alice, token_registry.host
    image = token_registry.image("team-a/app:v1")

    def config(password: str) -> str:
        auth = base64.b64encode(f"{alice.username}:{password}".encode()).decode()
        return json.dumps({"auths": {host: {"auth": auth}}})

    report = env.admin.ok(
        "POST", "checks", json={"image": image.reference, "config": config(alice.password)}
    )
    assert report["ok"] and report["digest"] == image.digest
    [attempt] = report["attempts"]
    assert (attempt["source"], attempt["username"], attempt["credential_id"]) == (
        "config",
        alice.username,
        None,
    )
    refused = env.admin.ok(
        "POST", "checks", json={"image": image.reference, "config": config("nope-123")}
    )
    assert not refused["ok"] and refused["attempts"][0]["cause"] == "unauthorized"
    assert "nope-123" not in json.dumps(refused) and alice.password not in json.dumps(report)

    both = {"image": image.reference, "config": "{}", "cluster": "c1", "namespace": "shop"}
    assert_error(env.admin.post("checks", json=both), 422, field="config")
    alone = {"image": image.reference, "config": "{}", "cluster": "c1"}
    assert_error(env.admin.post("checks", json=alone), 422, field="config")
    assert_error(env.admin.post("checks", json={"image": "x"}), 422, field="namespace")
    no_cluster = {"image": "x", "namespace": "shop"}
    assert_error(env.admin.post("checks", json=no_cluster), 422, field="cluster")
    bad = {"image": image.reference, "config": "{not json"}
    assert_error(env.admin.post("checks", json=bad), 422, field="config")
    _, viewer = env.user("vic", viewer=True)
    assert_error(env.api(viewer).post("checks", json={"image": "x", "config": "{}"}), 403)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": "nginx@sha256:abc"}, "image"),
        ({"platform": "linux"}, "platform"),
        ({"pull_policy": "Sometimes"}, "pull_policy"),
        ({"namespace": "nowhere"}, None),
    ],
)
def test_bad_check_requests(
    env: Env, token_registry: TokenRegistry, change: dict[str, str], field: str | None
) -> None:
    _world(env, token_registry)
    body = {"image": "nginx", "cluster": "c1", "namespace": "shop"} | change
    if field is None:
        assert_error(env.admin.post("checks", json=body), 404)
    else:
        assert_error(env.admin.post("checks", json=body), 422, field=field)


def test_a_check_adds_the_nodes_own_logins_and_mirrors_from_its_node_profile(
    env: Env, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    """kube-system gets no Secrets (the sync leaves it out): its pods pull with what the
    node's config.json holds, which the node profile a node's labels choose names."""
    _trust(env, token_registry)
    creds = _world(env, token_registry)
    env.namespace("kube-system")
    image = token_registry.image("team-a/app:v1").reference
    body = {"image": image, "cluster": "c1", "namespace": "kube-system"}
    # No profile: nothing from the node, and nothing to pull with.
    report = env.admin.ok("POST", "checks", json=body)
    assert report["ok"] is False and "node_profile" not in report
    assert [a["source"] for a in report["attempts"]] == ["anonymous"]

    mirror = "https://mirror.corp.example"
    registries = [{"host": token_registry.host, "mirrors": [mirror]}]
    env.admin.ok(
        "POST",
        "clusters/c1/node-profiles",
        status=201,
        json={"name": "pool-b", "node_selector": {"pool": "b"}, "credentials": ["bob"]},
    )
    env.admin.ok(
        "POST",
        "clusters/c1/node-profiles",
        status=201,
        json={"name": "base", "registries": registries, "credentials": ["bob"]},
    )
    report = env.admin.ok("POST", "checks", json=body)
    # bob's login is the node's, and bob may not pull team-a: the node cannot either.
    assert [(a["source"], a["cause"]) for a in report["attempts"]] == [
        ("node config.json (profile base): bob", "denied")
    ]
    node = report["node_profile"]
    assert node["profile"] == "base" and node["relies_on_node"] is True
    assert [m["url"] for m in node["mirrors"]] == [mirror]
    assert node["credentials_to_mirrors"] is True

    # In shop the pod's Secrets come first, then the node's: with all, every one is tried.
    report = env.admin.ok(
        "POST",
        "checks",
        json=body | {"namespace": "shop", "all": True, "node_labels": {"pool": "b"}},
    )
    assert [(a["source"], a["cause"]) for a in report["attempts"]] == [
        ("wrong", "unauthorized"),
        ("alice", None),
        ("bob", "denied"),
        ("node config.json (profile pool-b): bob", "denied"),
    ]
    assert report["node_profile"]["profile"] == "pool-b"
    assert report["node_profile"]["relies_on_node"] is False
    assert creds["bob"]["name"] == "bob"
    assert_error(env.admin.post("checks", json=body | {"node_labels": {"bad key!": "x"}}), 422)
