"""The registry fixtures, proved with the real skopeo client (and raw HTTP where a fixture's
own protocol is the point), never with project code."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Result
from tests.registry.conftest import MakeFaultProxy
from tests.registry.fault_proxy import describe
from tests.registry.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from tests.registry.servers import (
    APP,
    MULTI,
    MULTI_DOCKER,
    PUBLIC,
    TEAM_B,
    BasicRegistry,
    Credentials,
    Layouts,
    MtlsRegistry,
    PlainRegistry,
    RunningRegistry,
    TokenRegistry,
)
from tests.registry.token_server import Grant, TokenServer

pytestmark = pytest.mark.integration

BOTH_PLATFORMS = {"linux/amd64", "linux/arm64/v8"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_standard_images(registry: RunningRegistry, credentials: Credentials | None) -> None:
    """team-a/app, team-a/multi and team-a/multi-docker are served as recorded."""
    expected_types = {APP: OCI_MANIFEST, MULTI: OCI_INDEX, MULTI_DOCKER: DOCKER_MANIFEST_LIST}
    for name, media_type in expected_types.items():
        image = registry.image(name)
        raw = registry.inspect(name, "--raw", credentials=credentials)
        assert raw.returncode == 0, raw.describe()
        assert sha256(raw.out) == image.digest
        assert raw.out == image.raw_manifest
        assert json.loads(raw.out)["mediaType"] == media_type == image.media_type
        cooked = registry.inspect(name, credentials=credentials)
        assert cooked.returncode == 0, cooked.describe()
        assert cooked.json()["Digest"] == image.digest
        assert cooked.json()["Os"] == "linux"
    assert registry.image(APP).platform_digests == {"linux/amd64": registry.image(APP).digest}
    for name, instance_type in ((MULTI, OCI_MANIFEST), (MULTI_DOCKER, DOCKER_MANIFEST)):
        image = registry.image(name)
        assert image.is_list
        assert set(image.platform_digests) == BOTH_PLATFORMS
        for digest in image.platform_digests.values():
            by_digest = registry.skopeo(
                "inspect",
                "--raw",
                *registry.tls_args(),
                *registry.creds_args(credentials),
                f"docker://{registry.ref(image.repository)}@{digest}",
            )
            assert by_digest.returncode == 0, by_digest.describe()
            assert sha256(by_digest.out) == digest
            assert json.loads(by_digest.out)["mediaType"] == instance_type
    # The Docker list is a conversion: same platforms, other digests.
    assert set(registry.image(MULTI).platform_digests.values()).isdisjoint(
        registry.image(MULTI_DOCKER).platform_digests.values()
    )


def assert_auth_failure(stderr: str) -> None:
    said = stderr.lower()
    assert "unauthorized" in said or "authentication required" in said, stderr


# --------------------------------------------------------------------------- basic


def test_basic_registry_serves_the_recorded_images(basic_registry: BasicRegistry) -> None:
    assert basic_registry.url == f"https://{basic_registry.host}"
    assert basic_registry.host.startswith("127.0.0.1:")
    assert ":" in basic_registry.credentials.password
    assert not basic_registry.credentials.password.isascii()
    assert_standard_images(basic_registry, basic_registry.credentials)


def test_basic_registry_has_120_tags_of_one_manifest(basic_registry: BasicRegistry) -> None:
    listed = basic_registry.skopeo(
        "list-tags",
        *basic_registry.tls_args(),
        *basic_registry.creds_args(),
        f"docker://{basic_registry.ref(basic_registry.many_repository)}",
    )
    assert listed.returncode == 0, listed.describe()
    assert sorted(listed.json()["Tags"]) == sorted(basic_registry.many_tags)
    assert len(basic_registry.many_tags) == 120
    last = basic_registry.inspect(
        f"{basic_registry.many_repository}:{basic_registry.many_tags[-1]}"
    )
    assert last.returncode == 0, last.describe()
    assert last.json()["Digest"] == basic_registry.many_digest


def test_basic_registry_refuses_a_wrong_password_and_no_credentials(
    basic_registry: BasicRegistry,
) -> None:
    wrong = Credentials(username="alice", password=basic_registry.credentials.password + "x")
    refused = basic_registry.inspect(APP, credentials=wrong)
    assert refused.returncode != 0, refused.describe()
    assert_auth_failure(refused.stderr)
    anonymous = basic_registry.skopeo(
        "inspect", *basic_registry.tls_args(), f"docker://{basic_registry.ref(APP)}"
    )
    assert anonymous.returncode != 0, anonymous.describe()
    assert_auth_failure(anonymous.stderr)


def test_basic_registry_tls_is_verified(basic_registry: BasicRegistry, tmp_path: Path) -> None:
    """Without the fixture's CA, skopeo refuses the self-signed certificate."""
    untrusting = basic_registry.skopeo(
        "inspect",
        "--cert-dir",
        str(tmp_path),
        *basic_registry.creds_args(),
        f"docker://{basic_registry.ref(APP)}",
    )
    assert untrusting.returncode != 0, untrusting.describe()
    assert "certificate" in untrusting.stderr, untrusting.describe()


# --------------------------------------------------------------------------- token


def test_token_registry_serves_the_recorded_images(token_registry: TokenRegistry) -> None:
    assert_standard_images(token_registry, token_registry.alice)
    for name, who in ((TEAM_B, token_registry.bob), (PUBLIC, None)):
        image = token_registry.image(name)
        raw = token_registry.skopeo(
            "inspect",
            "--raw",
            *token_registry.tls_args(),
            *(["--creds", who.creds] if who else ["--no-creds"]),
            f"docker://{image.reference}",
        )
        assert raw.returncode == 0, raw.describe()
        assert sha256(raw.out) == image.digest
        assert image.platform_digests == {"linux/amd64": image.digest}
    distinct = {token_registry.image(n).digest for n in (APP, TEAM_B, PUBLIC)}
    assert len(distinct) == 3


def test_token_registry_enforces_the_acl(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    def inspect(name: str, who: Credentials | None) -> tuple[int, str]:
        result = token_registry.skopeo(
            "inspect",
            *token_registry.tls_args(),
            *(["--creds", who.creds] if who else ["--no-creds"]),
            f"docker://{token_registry.ref(name)}",
        )
        return result.returncode, result.stderr

    alice, bob = token_registry.alice, token_registry.bob
    assert inspect(APP, alice)[0] == 0
    assert inspect(TEAM_B, bob)[0] == 0
    assert inspect(PUBLIC, None)[0] == 0
    assert inspect(PUBLIC, bob)[0] == 0  # anonymous grants apply to everyone

    # A user without the scope gets a token with no actions; the registry then answers
    # 401 insufficient_scope, which skopeo words as an authentication failure.
    status, stderr = inspect(APP, bob)
    assert status != 0
    assert "requested access to the resource is denied" in stderr, stderr
    status, stderr = inspect(APP, None)
    assert status != 0
    assert "requested access to the resource is denied" in stderr, stderr

    # A wrong password fails at the token server itself.
    status, stderr = inspect(APP, Credentials(username="alice", password="wrong"))
    assert status != 0
    assert "401" in stderr or "unauthorized" in stderr.lower(), stderr

    assert token_registry.token_requests() == token_server.request_count() >= 7
    assert token_server.counts.get("POST", 0) == 0  # skopeo uses the GET flavour
    seen = {(r.username, r.scopes, r.status) for r in token_server.requests}
    assert ("alice", ("repository:team-a/app:pull",), 200) in seen
    assert ("bob", ("repository:team-a/app:pull",), 200) in seen
    assert (None, ("repository:public/hello:pull",), 200) in seen
    assert ("alice", ("repository:team-a/app:pull",), 401) in seen
    denied = next(
        r for r in token_server.requests if r.username == "bob" and "team-a" in r.scopes[0]
    )
    assert [a.actions for a in denied.granted] == [()]


def test_token_server_get_flavour(token_registry: TokenRegistry, token_server: TokenServer) -> None:
    alice = token_registry.alice
    params = (
        ("service", token_registry.service),
        ("scope", "repository:team-a/app:pull,push"),
        ("scope", "repository:team-b/other:pull"),
        ("account", alice.username),
        ("offline_token", "true"),
    )
    answer = httpx.get(
        token_registry.realm,
        verify=token_registry.ssl_context(),
        params=params,
        headers={"Authorization": alice.authorization},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at", "refresh_token"}
    assert body["token"] == body["access_token"]
    claims = token_server.decode(body["token"])
    assert claims["sub"] == "alice"
    assert claims["aud"] == token_registry.service
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 300
    assert {"iss", "nbf", "jti"} <= set(claims)
    assert claims["access"] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "team-b/other", "actions": []},
    ]

    # The token works against the real registry.
    with httpx.Client(verify=token_registry.ssl_context()) as client:
        manifest = client.get(
            f"{token_registry.url}/v2/team-a/app/manifests/v1",
            headers={"Authorization": f"Bearer {body['token']}", "Accept": OCI_MANIFEST},
        )
        assert manifest.status_code == 200, manifest.text
        assert sha256(manifest.content) == token_registry.image(APP).digest
        other = client.get(
            f"{token_registry.url}/v2/team-b/other/manifests/v1",
            headers={"Authorization": f"Bearer {body['token']}", "Accept": OCI_MANIFEST},
        )
        assert other.status_code == 401, other.text
        assert 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]

    # Anonymous: no refresh token even when asked; bad credentials: 401.
    anonymous = httpx.get(token_registry.realm, verify=token_registry.ssl_context(), params=params)
    assert anonymous.status_code == 200
    assert "refresh_token" not in anonymous.json()
    wrong = Credentials(username="alice", password="nope")
    refused = httpx.get(
        token_registry.realm,
        verify=token_registry.ssl_context(),
        params=params,
        headers={"Authorization": wrong.authorization},
    )
    assert refused.status_code == 401
    assert token_server.counts == {"GET": 3}


def test_token_server_post_flavour(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    bob = token_registry.bob
    form = {
        "grant_type": "password",
        "username": bob.username,
        "password": bob.password,
        "service": token_registry.service,
        "scope": "repository:team-b/other:pull,push repository:public/hello:pull",
        "client_id": "pullkeeper-tests",
        "access_type": "offline",
    }
    answer = httpx.post(token_registry.realm, verify=token_registry.ssl_context(), data=form)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {"access_token", "expires_in", "issued_at", "refresh_token"} <= set(body)
    claims = token_server.decode(body["access_token"])
    assert claims["access"] == [
        {"type": "repository", "name": "team-b/other", "actions": ["pull"]},
        {"type": "repository", "name": "public/hello", "actions": ["pull"]},
    ]
    refreshed = httpx.post(
        token_registry.realm,
        verify=token_registry.ssl_context(),
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "service": token_registry.service,
            "scope": "repository:team-b/other:pull",
            "client_id": "pullkeeper-tests",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    assert token_server.decode(refreshed.json()["access_token"])["sub"] == "bob"

    bad_password = httpx.post(
        token_registry.realm, verify=token_registry.ssl_context(), data={**form, "password": "nope"}
    )
    assert bad_password.status_code == 401
    assert bad_password.json()["error"] == "invalid_grant"
    bad_refresh = httpx.post(
        token_registry.realm,
        verify=token_registry.ssl_context(),
        data={
            "grant_type": "refresh_token",
            "refresh_token": "not-issued",
            "service": token_registry.service,
            "client_id": "pullkeeper-tests",
        },
    )
    assert bad_refresh.status_code == 401
    assert token_server.counts == {"POST": 4}
    logged = [r for r in token_server.requests if r.params.get("password")]
    assert all(r.params["password"] == ("<redacted>",) for r in logged)


def test_token_server_controls(token_registry: TokenRegistry, token_server: TokenServer) -> None:
    params = {"service": token_registry.service, "scope": "repository:public/hello:pull"}
    token_registry.set_token_expires_in(5)
    short = httpx.get(
        token_registry.realm, verify=token_registry.ssl_context(), params=params
    ).json()
    assert short["expires_in"] == 5
    claims = token_server.decode(short["token"])
    assert claims["exp"] - claims["iat"] == 5

    token_registry.fail_next_token_requests(2)
    for _ in range(2):
        limited = httpx.get(
            token_registry.realm, verify=token_registry.ssl_context(), params=params
        )
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
    assert (
        httpx.get(
            token_registry.realm, verify=token_registry.ssl_context(), params=params
        ).status_code
        == 200
    )
    assert token_registry.token_requests("GET") == 4

    # skopeo sees the token server's 429 too.
    token_registry.fail_next_token_requests(1)
    refused = token_registry.skopeo(
        "inspect",
        *token_registry.tls_args(),
        "--no-creds",
        f"docker://{token_registry.ref(PUBLIC)}",
    )
    assert refused.returncode != 0, refused.describe()
    assert "429" in refused.stderr or "too many" in refused.stderr.lower(), refused.describe()

    token_registry.reset_token_server()
    assert token_registry.token_requests() == 0
    assert (
        httpx.get(token_registry.realm, verify=token_registry.ssl_context(), params=params).json()[
            "expires_in"
        ]
        == 300
    )


def test_token_server_accepts_a_rotating_password_until_reset(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    current = ["first-rotating-password"]
    token_server.accept(
        "rotor",
        lambda: current[0],
        [
            Grant(
                user="rotor",
                resource_type="repository",
                pattern="team-b/*",
                actions=frozenset({"pull"}),
            )
        ],
    )
    scope = "repository:team-b/other:pull"

    def token_for(password: str) -> httpx.Response:
        return httpx.get(
            token_registry.realm,
            verify=token_registry.ssl_context(),
            params={"service": token_registry.service, "scope": scope},
            headers={
                "Authorization": Credentials(username="rotor", password=password).authorization
            },
        )

    granted = token_for("first-rotating-password")
    assert granted.status_code == 200, granted.text
    assert token_server.decode(granted.json()["token"])["access"] == [
        {"type": "repository", "name": "team-b/other", "actions": ["pull"]}
    ]
    current[0] = "second-rotating-password"
    assert token_for("first-rotating-password").status_code == 401
    assert token_for("second-rotating-password").status_code == 200
    token_server.reset()
    assert token_for("second-rotating-password").status_code == 401


# --------------------------------------------------------------------------- plain


def test_plain_registry_serves_the_recorded_images(plain_registry: PlainRegistry) -> None:
    assert plain_registry.url == f"http://{plain_registry.host}"
    assert plain_registry.ca_file is None
    assert plain_registry.credentials is None
    assert_standard_images(plain_registry, None)
    assert httpx.get(f"{plain_registry.url}/v2/").status_code == 200


# --------------------------------------------------------------------------- mTLS


def test_mtls_registry_needs_the_client_certificate(mtls_registry: MtlsRegistry) -> None:
    assert_standard_images(mtls_registry, None)
    for cert_dir in (mtls_registry.server_only_cert_dir, mtls_registry.untrusted_cert_dir):
        refused = mtls_registry.skopeo(
            "inspect", "--cert-dir", str(cert_dir), f"docker://{mtls_registry.ref(APP)}"
        )
        assert refused.returncode != 0, refused.describe()
        assert "tls: bad certificate" in refused.stderr, refused.describe()
    with httpx.Client(verify=mtls_registry.ssl_context()) as client:
        assert client.get(f"{mtls_registry.url}/v2/").status_code == 200
    with (
        httpx.Client(verify=mtls_registry.ssl_context(client_cert=False)) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.get(f"{mtls_registry.url}/v2/")


# --------------------------------------------------------------------------- fault proxy


def test_fault_proxy_forwards_pulls_and_pushes(
    fault_proxy: MakeFaultProxy, plain_registry: PlainRegistry, oci_layouts: Layouts
) -> None:
    proxy = fault_proxy()
    through = plain_registry.skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{proxy.host}/{MULTI}"
    )
    assert through.returncode == 0, through.describe()
    assert sha256(through.out) == plain_registry.image(MULTI).digest
    # A push goes through too (uploads, PATCH bodies, Location headers built from Host).
    pushed = plain_registry.skopeo(
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        f"oci:{oci_layouts.public}:v1",
        f"docker://{proxy.host}/proxied/pushed:v1",
    )
    assert pushed.returncode == 0, pushed.describe()
    direct = plain_registry.inspect("proxied/pushed:v1", "--raw")
    assert direct.returncode == 0, direct.describe()
    methods = {r.method for r in proxy.requests}
    assert {"GET", "HEAD", "POST", "PUT"} <= methods, describe(proxy.requests)
    assert not any(r.injected for r in proxy.requests)
    assert all(r.header("Host") == proxy.host for r in proxy.requests)


def test_fault_proxy_injects_429_for_skopeo(
    fault_proxy: MakeFaultProxy, plain_registry: PlainRegistry
) -> None:
    proxy = fault_proxy()

    def inspect() -> Result:
        return plain_registry.skopeo(
            "inspect", "--tls-verify=false", f"docker://{proxy.host}/{APP}"
        )

    # skopeo 1.9 makes 5 attempts on 429, waiting Retry-After seconds in between (without
    # the header: 2 s, then doubling). One 429 with Retry-After: 1 costs it a second.
    proxy.rate_limit(r"/manifests/", times=1, retry_after="1")
    started = time.monotonic()
    assert inspect().returncode == 0
    assert time.monotonic() - started >= 1
    manifests = proxy.requests_matching(r"/manifests/")
    assert [(r.status, r.injected) for r in manifests[:2]] == [(429, True), (200, False)]

    # Five in a row and it gives up, quoting Docker Hub's message; Retry-After: 0 keeps it fast.
    proxy.clear_requests()
    proxy.rate_limit(r"/manifests/", times=5, retry_after="0")
    limited = inspect()
    assert limited.returncode != 0
    assert "toomanyrequests: You have reached your pull rate limit" in limited.stderr
    assert len(proxy.requests_matching(r"/manifests/")) == 5, describe(proxy.requests)
    assert proxy.pending_injections() == 0


def test_fault_proxy_injects_for_raw_http(
    fault_proxy: MakeFaultProxy, plain_registry: PlainRegistry
) -> None:
    proxy = fault_proxy()
    proxy.rate_limit(r"^/v2/$", times=1)
    proxy.inject(r"^/v2/$", status=503, body="down", headers={"Content-Type": "text/plain"})
    with httpx.Client(base_url=proxy.url) as client:
        limited = client.get("/v2/")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert limited.headers["ratelimit-remaining"] == "0;w=21600"
        assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        unavailable = client.get("/v2/")
        assert (unavailable.status_code, unavailable.text) == (503, "down")
        assert proxy.pending_injections() == 0
        forwarded = client.get("/v2/", headers={"X-Test": "kept"})
        assert forwarded.status_code == 200
        assert forwarded.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        manifest = client.get("/v2/team-a/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert sha256(manifest.content) == plain_registry.image(APP).digest
    assert proxy.requests[2].header("x-test") == "kept"
    assert [r.status for r in proxy.requests] == [429, 503, 200, 200]


def test_fault_proxy_redirects_blobs(
    fault_proxy: MakeFaultProxy, plain_registry: PlainRegistry, tmp_path: Path
) -> None:
    proxy = fault_proxy()
    proxy.redirect_blobs()
    copied = plain_registry.skopeo(
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        f"docker://{proxy.host}/{APP}",
        f"oci:{tmp_path / 'out'}:v1",
    )
    assert copied.returncode == 0, copied.describe()
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == plain_registry.image(APP).digest
    for blob in (tmp_path / "out" / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    redirected = proxy.requests_matching(r"/blobs/sha256:")
    assert redirected and all(r.status == 307 for r in redirected), describe(proxy.requests)
    served = [r for r in proxy.requests if r.listener == "blobs"]
    assert len(served) == len(redirected), describe(proxy.requests)
    assert all(r.status == 200 and r.header("Authorization") is None for r in served)
    # The object store refuses credentials, as S3 does with presigned URLs.
    refused = httpx.get(
        f"{proxy.blob_url}{served[0].path}?{served[0].query}",
        headers={"Authorization": "Bearer leaked"},
    )
    assert refused.status_code == 400
    assert b"Only one auth mechanism allowed" in refused.content
