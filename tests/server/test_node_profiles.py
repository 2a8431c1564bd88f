"""Node profiles on the server: admins keep them per cluster (checked as a profile file is,
audited), owners see their projects' registries only; a node token reads the profile its
labels choose, with its logins, unchanged answers cost no password read; nodes report
their state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pullkeeper.core.nodeconfig.profile import parse
from tests.registry import pki
from tests.server.conftest import Api, Env, assert_error, build_world

HUB_PASSWORD = "hub-node-pw-Kx93vd"
QUAY_PASSWORD = "quay-node-pw-Rt28mw"


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    issued = pki.certificate_authority(tmp_path_factory.mktemp("ca") / "ca", "Node Test CA")
    return Path(issued.cert_file).read_text()


def profiles(cluster: str = "c1") -> str:
    return f"clusters/{cluster}/node-profiles"


def node_token(env: Env, cluster: str = "c1") -> Api:
    issued = env.admin.ok("POST", f"clusters/{cluster}/node-tokens", status=201, json={})
    env.secrets.add(issued["token"])
    return env.api(issued["token"])


def fetch(node: Api, *labels: str, name: str = "node-1", **kw: Any) -> Any:
    return node.get(
        "node-profile", params={"cluster": "c1", "node": name, "label": list(labels)}, **kw
    )


@pytest.fixture
def cluster(env: Env, ca_pem: str) -> dict[str, Any]:
    env.cluster()
    env.cred(
        "hub", server="https://index.docker.io/v1/", provider="dockerhub", password=HUB_PASSWORD
    )
    env.cred("quay", server="quay.io", provider="quay", password=QUAY_PASSWORD)
    created: dict[str, Any] = env.admin.ok(
        "POST",
        profiles(),
        status=201,
        json={
            "name": "base",
            "registries": [
                {"host": "registry.corp.example:5000", "ca": ca_pem},
                {"host": "lab.corp.example", "insecure": "http"},
                {"host": "docker.io", "mirrors": ["https://mirror.corp.example"]},
            ],
            "credentials": ["hub"],
        },
    )
    return created


def test_an_admin_keeps_a_profile_checked_normalized_and_audited(
    env: Env, cluster: dict[str, Any], ca_pem: str
) -> None:
    assert cluster["node_selector"] == {} and cluster["credentials"] == ["hub"]
    assert cluster["registries"][0] == {"host": "registry.corp.example:5000", "ca": ca_pem}
    assert cluster["registries"][2] == {
        "host": "docker.io",
        "mirrors": ["https://mirror.corp.example"],
    }
    response = env.admin.get(f"{profiles()}/base")
    assert response.status_code == 200
    tag = response.headers["etag"]
    body = {"name": "base", "registries": [{"host": "quay.io"}], "credentials": ["quay"]}
    env.admin.ok("PUT", f"{profiles()}/base", json=body, headers={"If-Match": tag})
    # The tag read before that write is stale now: nothing is saved.
    stale = env.admin.put(
        f"{profiles()}/base", json=body | {"credentials": []}, headers={"If-Match": tag}
    )
    assert_error(stale, 412, "precondition_failed")
    assert env.admin.ok("GET", f"{profiles()}/base")["credentials"] == ["quay"]
    env.admin.ok("DELETE", f"{profiles()}/base", status=204)
    assert_error(env.admin.get(f"{profiles()}/base"), 404)
    events = [e for e in env.audit() if e["object_type"] == "node_profile"]
    assert [e["action"] for e in events] == [
        "node_profile.delete",
        "node_profile.update",
        "node_profile.create",
    ]
    update = events[1]
    assert update["before"]["credentials"] == ["hub"] and update["after"]["credentials"] == ["quay"]
    assert update["after"]["registries"] == ["quay.io"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"registries": [{"host": "r.example", "ca": "not a cert"}]}, "registries[0].ca", "PEM"),
        ({"registries": [{"host": "https://r.example"}]}, "registries[0].host", "scheme"),
        (
            {
                "registries": [
                    {"host": "a.example", "mirrors": ["https://b.example"]},
                    {"host": "b.example", "mirrors": ["https://a.example"]},
                ]
            },
            "registries[0].mirrors",
            "loop",
        ),
        ({"node_selector": {"bad key!": "x"}}, "node_selector.bad key!", "label key"),
        ({"credentials": ["nope"]}, "credentials[0]", "cluster scope"),
        ({"credentials": ["team-cred"]}, "credentials[0]", "cluster scope"),
        ({"name": "Not_A_Label"}, "name", "RFC 1123"),
    ],
)
def test_bad_input_names_its_field_and_nothing_is_written(
    env: Env, body: dict[str, Any], field: str, says: str
) -> None:
    env.cluster()
    project = env.project("team")
    env.cred("team-cred", scope="project", project=project["id"])
    response = env.admin.post(profiles(), json={"name": "p"} | body)
    assert_error(response, 422, field=field, message=says)
    assert env.admin.ok("GET", profiles())["items"] == []


def test_two_profiles_never_select_the_same_nodes_alike(env: Env, cluster: dict[str, Any]) -> None:
    env.admin.ok(
        "POST", profiles(), json={"name": "gpu", "node_selector": {"pool": "gpu"}}, status=201
    )
    again = env.admin.post(profiles(), json={"name": "gpu-2", "node_selector": {"pool": "gpu"}})
    assert_error(again, 409, field="node_selector", message="'gpu'")
    assert_error(env.admin.post(profiles(), json={"name": "base"}), 409, field="name")


def test_only_admins_change_profiles_and_owners_see_their_registries(env: Env) -> None:
    world = build_world(env, ("owner-a", "member-a", "gviewer"))
    # alpha's credentials are for registry.example.com and quay.io (build_world).
    env.admin.ok(
        "POST",
        profiles(),
        status=201,
        json={
            "name": "base",
            "registries": [
                {"host": "quay.io", "insecure": "skip_verify"},
                {"host": "secret-internal.example"},
            ],
        },
    )
    owner, member = world.as_("owner-a"), world.as_("member-a")
    seen = owner.ok("GET", profiles())["items"]
    assert [r["host"] for r in seen[0]["registries"]] == ["quay.io"]
    everything = ["quay.io", "secret-internal.example"]
    for who in (env.admin, world.as_("gviewer")):
        assert [
            r["host"] for r in who.ok("GET", profiles())["items"][0]["registries"]
        ] == everything
    assert_error(member.get(profiles()), 403)
    assert_error(owner.post(profiles(), json={"name": "mine"}), 403)
    assert_error(owner.delete(f"{profiles()}/base"), 403)
    # A cluster with none of the owner's projects is not there for them at all.
    assert_error(owner.get(profiles("c2")), 404)


def test_a_node_gets_the_profile_its_labels_choose_with_its_logins(
    env: Env, cluster: dict[str, Any], ca_pem: str
) -> None:
    env.admin.ok(
        "POST",
        profiles(),
        status=201,
        json={"name": "gpu", "node_selector": {"pool": "gpu"}, "credentials": ["quay", "hub"]},
    )
    env.admin.ok(
        "POST",
        profiles(),
        status=201,
        json={"name": "gpu-eu", "node_selector": {"pool": "gpu", "zone": "eu"}},
    )
    node = node_token(env)
    plain = fetch(node)
    assert plain.status_code == 200, plain.text
    answer = plain.json()
    assert answer["profile"] == "base" and answer["node"] == "node-1"
    document = answer["document"]
    assert document["logins"] == {
        "https://index.docker.io/v1/": {"username": "robot", "password": HUB_PASSWORD}
    }
    # What the node gets is a node profile document, as a file would hold it.
    parsed = parse(document)
    assert parsed.registry("registry.corp.example:5000").ca_pem == ca_pem  # type: ignore[union-attr]
    assert fetch(node, "pool=gpu").json()["profile"] == "gpu"
    assert fetch(node, "pool=gpu", "zone=eu").json()["profile"] == "gpu-eu"
    assert fetch(node, "pool=gpu,zone=us").json()["profile"] == "gpu"
    gpu = fetch(node, "pool=gpu").json()["document"]
    assert list(gpu["logins"]) == ["quay.io", "https://index.docker.io/v1/"]
    reads = [e for e in env.audit() if e["action"] == "credential.read_secret"]
    assert reads and all(e["after"]["by"] == "node profile" for e in reads)
    assert {e["after"]["node"] for e in reads} == {"node-1"}


def test_an_unchanged_profile_is_not_sent_again_and_reads_no_password(
    env: Env, cluster: dict[str, Any]
) -> None:
    node = node_token(env)
    first = fetch(node)
    tag = first.headers["etag"]
    assert tag == f'"{first.json()["digest"]}"'
    reads = len([e for e in env.audit() if e["action"] == "credential.read_secret"])
    again = fetch(node, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert len([e for e in env.audit() if e["action"] == "credential.read_secret"]) == reads
    # A new password for a login the profile names is a change.
    hub = next(c for c in env.admin.ok("GET", "credentials")["items"] if c["name"] == "hub")
    env.admin.ok("PATCH", f"credentials/{hub['id']}", json={"password": "hub-node-pw-new-Zz11"})
    env.secrets.add("hub-node-pw-new-Zz11")
    changed = fetch(node, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["document"]["logins"]["https://index.docker.io/v1/"]["password"] == (
        "hub-node-pw-new-Zz11"
    )
    # So is a change of the profile; and a node no profile selects gets an empty one.
    env.admin.ok("DELETE", f"{profiles()}/base", status=204)
    gone = fetch(node, headers={"If-None-Match": changed.headers["etag"]})
    assert gone.status_code == 200
    assert gone.json()["profile"] is None
    assert gone.json()["document"] == {"registries": [], "logins": {}}


def test_the_default_registry_is_docker_hubs_first_mirror_when_asked(
    env: Env, cluster: dict[str, Any]
) -> None:
    env.admin.ok("PUT", "clusters/c1/policy", json={"default_registry": "harbor.corp.example/hub"})
    body = env.admin.ok("GET", f"{profiles()}/base")
    body = {k: body[k] for k in ("name", "registries", "credentials")}
    env.admin.ok("PUT", f"{profiles()}/base", json=body | {"mirror_default_registry": True})
    node = node_token(env)
    hub = parse(fetch(node).json()["document"]).registry("docker.io")
    assert hub is not None
    assert [(m.url, m.override_path) for m in hub.mirrors] == [
        ("https://harbor.corp.example/v2/hub", True),
        ("https://mirror.corp.example", False),
    ]


def test_nodes_report_their_state_and_tokens_stay_in_their_lane(
    env: Env, cluster: dict[str, Any]
) -> None:
    node = node_token(env)
    report = {
        "cluster": "c1",
        "node": "node-1",
        "profile": "base",
        "digest": "d1",
        "state": "applied",
    }
    assert node.post("node-reports", json=report).status_code == 204
    drift = report | {"node": "node-2", "state": "drifted", "detail": "left alone: /etc/x"}
    assert node.post("node-reports", json=drift).status_code == 204
    assert (
        node.post("node-reports", json=report | {"state": "failed", "detail": "no"}).status_code
        == 204
    )
    states = env.admin.ok("GET", "clusters/c1/nodes")["items"]
    assert [(s["node"], s["state"], s["detail"]) for s in states] == [
        ("node-1", "failed", "no"),
        ("node-2", "drifted", "left alone: /etc/x"),
    ]
    assert_error(node.post("node-reports", json=report | {"state": "fine"}), 422, field="state")
    assert_error(node.post("node-reports", json=report | {"node": "Bad Name"}), 422, field="node")
    env.cluster("c2")
    assert_error(node.post("node-reports", json=report | {"cluster": "c2"}), 403)
    assert_error(node.get("node-profile", params={"cluster": "c2", "node": "n"}), 403)
    # A node token reads its profile and nothing else; a user's token is not a node's.
    assert_error(node.get(profiles()), 403)
    assert_error(env.admin.get("node-profile", params={"cluster": "c1", "node": "n"}), 403)
    assert_error(fetch(node, "not a label"), 422, field="label")
