"""What applies in a namespace, in the kubelet's order; and the secret as a Secret carries it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from pullkeeper.core.dockerconfig import AuthEntry, encode_config_json
from pullkeeper.core.keyring import Keyring
from tests.server.conftest import Env, assert_error
from tests.tools import missing

SCOPE_ORDER = {"namespace": 0, "project": 1, "cluster": 2}


def _world(env: Env) -> dict[str, dict[str, Any]]:
    env.cluster("c1")
    env.project("web")
    env.project("api")
    env.namespace("shop", "web")
    env.namespace("billing", "api")
    env.namespace("tools", None)
    made = {}
    specs: list[tuple[str, dict[str, Any]]] = [
        ("shop-quay", {"scope": "namespace", "namespace": "shop", "provider": "quay"}),
        ("web-quay", {"scope": "project", "project": "web", "provider": "quay"}),
        ("wide-quay", {"scope": "cluster", "provider": "quay"}),
        ("web-hub", {"scope": "project", "project": "web", "provider": "dockerhub"}),
        (
            "shop-local",
            {"scope": "namespace", "namespace": "shop", "server": "registry.example.com"},
        ),
        (
            "shop-local5000",
            {"scope": "namespace", "namespace": "shop", "server": "registry.example.com:5000"},
        ),
        ("wide-gitlab", {"scope": "cluster", "provider": "gitlab"}),
        ("web-ghcr-old", {"scope": "project", "project": "web", "provider": "ghcr"}),
        ("web-ghcr-new", {"scope": "project", "project": "web", "provider": "ghcr"}),
        (
            "shop-off",
            {
                "scope": "namespace",
                "namespace": "shop",
                "server": "off.example.com",
                "active": False,
            },
        ),
        ("billing-x", {"scope": "namespace", "namespace": "billing", "server": "b.example.com"}),
        ("api-quay", {"scope": "project", "project": "api", "provider": "quay"}),
    ]
    for name, kw in specs:
        kw.setdefault("server", None)
        kw.setdefault("provider", "custom")
        made[name] = env.cred(name, **kw)
    return made


def _effective(env: Env, namespace: str, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = env.admin.ok(
        "GET", f"namespaces/{namespace}/effective-credentials", params={"cluster": "c1", **params}
    )
    return result


def test_effective_credentials_in_kubelet_order(env: Env) -> None:
    made = _world(env)
    result = _effective(env, "shop")
    assert (result["cluster"], result["namespace"], result["image"]) == ("c1", "shop", None)
    names = [c["name"] for c in result["items"]]
    # Reverse byte order of the keys (registry.gitlab.com > registry.example.com:5000 >
    # registry.example.com > quay.io > index.docker.io > ghcr.io), then namespace, project,
    # cluster scope; superseded, inactive and other namespaces' credentials left out.
    assert names == [
        "wide-gitlab",
        "shop-local5000",
        "shop-local",
        "shop-quay",
        "web-quay",
        "wide-quay",
        "web-hub",
        "web-ghcr-new",
    ]
    for item in result["items"]:
        assert item["secret_name"] == item["name"]
        assert (item["state"], item["effective"], item["superseded_by"]) == ("active", True, None)
        expected = env.admin.ok("GET", f"credentials/{made[item['name']]['id']}")
        assert {k: v for k, v in item.items() if k != "secret_name"} == expected

    # A namespace outside projects gets namespace and cluster scope only.
    assert [c["name"] for c in _effective(env, "tools")["items"]] == ["wide-gitlab", "wide-quay"]
    assert [c["name"] for c in _effective(env, "billing")["items"]] == [
        "wide-gitlab",
        "api-quay",
        "wide-quay",
        "billing-x",
    ]

    # Deactivating the superseding credential brings the older one back.
    env.admin.ok("POST", f"credentials/{made['web-ghcr-new']['id']}/deactivate")
    assert [c["name"] for c in _effective(env, "shop")["items"]][-1] == "web-ghcr-old"


IMAGES = {
    "quay.io/org/app:1": ["shop-quay", "web-quay", "wide-quay"],
    "nginx": ["web-hub"],
    "library/nginx:1.27": ["web-hub"],
    "docker.io/library/nginx:latest": ["web-hub"],
    "registry.example.com:5000/team/app": ["shop-local5000"],
    "registry.example.com/team/app:v2": ["shop-local"],
    "ghcr.io/acme/tool@sha256:" + "a" * 64: ["web-ghcr-new"],
    "registry.gitlab.com/group/project/img": ["wide-gitlab"],
    "unknown.example.org/app": [],
    "off.example.com/app": [],
    "b.example.com/app": [],
}


def test_effective_credentials_for_an_image(env: Env, subtests: pytest.Subtests) -> None:
    _world(env)
    live = _effective(env, "shop")["items"]
    # The pod's imagePullSecrets: namespace, project, cluster scope, by name.
    pod_order = sorted(live, key=lambda c: (SCOPE_ORDER[c["scope"]], c["name"]))
    keyring = Keyring()
    for c in pod_order:
        keyring.add([(c["server"], AuthEntry(c["username"], "x", c["email"]))], c["name"])
    repositories = {
        "nginx": "docker.io/library/nginx",
        "library/nginx:1.27": "docker.io/library/nginx",
        "docker.io/library/nginx:latest": "docker.io/library/nginx",
    }
    for image, want in IMAGES.items():
        with subtests.test(image=image):
            result = _effective(env, "shop", image=image)
            assert result["image"] == image
            names = [c["name"] for c in result["items"]]
            assert names == want
            repo = repositories.get(image, image.split("@")[0].rsplit(":", 1)[0])
            if image.startswith("registry.example.com:5000"):
                repo = "registry.example.com:5000/team/app"
            assert names == [m.source for m in keyring.lookup(repo)]
            assert all(c["secret_name"] == c["name"] for c in result["items"])


def test_the_default_registry_is_applied_before_matching(env: Env) -> None:
    """Admission rewrites an image that names no registry before the kubelet sees it: the
    credentials of the default registry apply, and the allowlist judges the rewritten name."""
    env.cluster("c1")
    env.project("web")
    env.namespace("shop", "web")
    env.cred("mirror", scope="namespace", namespace="shop", server="mirror.example.com")
    env.cred("hub", scope="namespace", namespace="shop", provider="dockerhub", server=None)
    assert [c["name"] for c in _effective(env, "shop", image="nginx:1.27")["items"]] == ["hub"]
    env.admin.ok("PUT", "clusters/c1/policy", json={"default_registry": "mirror.example.com"})
    result = _effective(env, "shop", image="nginx:1.27")
    assert (result["pulled"], result["rewritten"]) == (
        "mirror.example.com/library/nginx:1.27",
        True,
    )
    assert [c["name"] for c in result["items"]] == ["mirror"]
    assert result["admission"] == {"allowed": True, "mode": "enforce", "violations": []}
    # An image that names its registry, Docker Hub included, is left alone.
    named = _effective(env, "shop", image="docker.io/library/nginx:1.27")
    assert (named["pulled"], named["rewritten"]) == ("docker.io/library/nginx:1.27", False)
    assert [c["name"] for c in named["items"]] == ["hub"]
    env.admin.ok("PUT", "clusters/c1/policy", json={"allowlist": ["docker.io"]})
    refused = _effective(env, "shop", image="nginx:1.27")["admission"]
    assert refused["allowed"] is False
    assert refused["violations"] == [
        "image mirror.example.com/library/nginx:1.27 comes from mirror.example.com, which is "
        "not on the allowlist (allowed: docker.io)"
    ]


def test_cluster_wide_credentials_do_not_reach_excluded_namespaces(env: Env) -> None:
    env.cluster("c1")
    env.namespace("kube-system")
    env.namespace("tools")
    env.cred("wide")
    env.cred("sys", scope="namespace", namespace="kube-system", server="quay.io")
    assert [c["name"] for c in _effective(env, "tools")["items"]] == ["wide"]
    assert [c["name"] for c in _effective(env, "kube-system")["items"]] == ["sys"]


def test_effective_credentials_errors(env: Env) -> None:
    _world(env)
    path = "namespaces/shop/effective-credentials"
    assert_error(
        env.admin.get("namespaces/unknown/effective-credentials", params={"cluster": "c1"}), 404
    )
    assert_error(env.admin.get(path), 422, field="cluster")
    assert_error(env.admin.get(path, params={"cluster": "nope"}), 404)
    for image in ("Bad Image", "Nginx", "example.com/Team/app", "a:b:c:d", "nginx:", "//x"):
        r = env.admin.get(path, params={"cluster": "c1", "image": image})
        assert_error(r, 422, field="image")


CASES = [
    # provider, server, username, password, email
    ("custom", "registry.example.com:5000", "robot", 'p@ss<w>&rd"q\\1', "dev@example.com"),
    ("dockerhub", None, "hubuser", "pw-hub-Xy9", ""),
    ("quay", None, "org+bot", "pässwörd-ü-9\u2028end", "ops@example.com"),
    (
        "gcr",
        None,
        "",
        json.dumps({"client_email": "a@b.iam", "private_key": "-----BEGIN-----\nabc\n-----END"}),
        "",
    ),
]


def _kubectl(server: str, username: str, password: str, email: str) -> bytes:
    args = [
        "kubectl",
        "create",
        "secret",
        "docker-registry",
        "s",
        f"--docker-server={server}",
        f"--docker-username={username}",
        f"--docker-password={password}",
        "--dry-run=client",
        "-o",
        "json",
    ]
    if email:
        args.append(f"--docker-email={email}")
    out = subprocess.run(
        args,
        check=True,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": "/nonexistent/kubeconfig"},
        timeout=60,
    ).stdout
    return base64.b64decode(json.loads(out)["data"][".dockerconfigjson"])


def test_dockerconfigjson_is_what_kubectl_writes(env: Env) -> None:
    env.cluster("c1")
    kubectl = shutil.which("kubectl")
    for i, (provider, server, username, password, email) in enumerate(CASES):
        c = env.cred(
            f"cred-{i}",
            provider=provider,
            server=server,
            username=username,
            password=password,
            email=email,
        )
        r = env.admin.get(f"credentials/{c['id']}/dockerconfigjson")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-store"
        expected = encode_config_json({c["server"]: AuthEntry(c["username"], password, email)})
        assert r.content == expected
        got = json.loads(r.content)["auths"][c["server"]]
        assert (got["username"], got["password"], got.get("email", "")) == (
            c["username"],
            password,
            email,
        )
        if kubectl:
            assert r.content == _kubectl(c["server"], c["username"], password, email)
    if kubectl is None:
        missing(
            "kubectl is not on PATH, so the byte comparison with kubectl's "
            "Secret does not run (the comparison with encode_config_json ran)"
        )


def test_each_secret_read_is_audited(env: Env) -> None:
    env.cluster("c1")
    env.project("web")
    c = env.cred("web", scope="project", project="web")
    for _ in range(2):
        env.secret(c["id"])
    events = env.audit(action="credential.read_secret")
    assert len(events) == 2
    for e in events:
        assert (e["actor"], e["object_type"], e["object_id"], e["project_id"]) == (
            "admin",
            "credential",
            c["id"],
            c["project_id"],
        )
        assert (e["before"], e["after"]) == (None, None)
        assert e["source"] == "testclient"
