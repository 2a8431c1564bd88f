"""The registry client against real registries: every failure cause produced for real, the
token and Basic flows, manifests of every media type, tags, blob redirects, TLS, the pool.

What a result should be always comes from the registry through skopeo (`images[...]`) or
from the fixtures' own records (token server, fault proxy), never from the client itself.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from pullkeeper.core import oci
from pullkeeper.registry.auth import Login
from pullkeeper.registry.client import TLS, Registry
from pullkeeper.registry.errors import Cause, RegistryError
from pullkeeper.registry.pool import RegistryPool
from pullkeeper.services import pull_trial
from tests.registry.conftest import MakeFaultProxy
from tests.registry.fault_proxy import describe
from tests.registry.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    inspect_image,
)
from tests.registry.servers import (
    APP,
    MANY_REPOSITORY,
    MANY_TAGS,
    MULTI,
    MULTI_DOCKER,
    PUBLIC,
    TEAM_B,
    BasicRegistry,
    Layouts,
    MtlsRegistry,
    PlainRegistry,
    RunningRegistry,
    TokenRegistry,
    push,
)
from tests.registry.token_server import TokenServer

pytestmark = pytest.mark.integration

APP_DOCKER = "team-a/app-docker:v1"  # pushed here: the fixtures have no Docker schema 2 image
WRONG_PASSWORD = "certainly-not-the-password-42"  # a throwaway test value


@pytest.fixture(autouse=True)
def _no_stored_cas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No CA stored by `registry trust` outside the test can make a registry trusted."""
    monkeypatch.setenv("PULLKEEPER_CERTS_DIR", str(tmp_path / "certs.d"))


class Sleeps:
    """A recording `sleep=`: the waits the client asked for, without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def ca(registry: RunningRegistry) -> TLS:
    return TLS(ca_file=registry.ca_file)


def login(registry: RunningRegistry) -> Login:
    assert registry.credentials is not None
    return Login(registry.credentials.username, registry.credentials.password)


def raises(cause: Cause, call: object, *words: str) -> RegistryError:
    """`call()` raises a RegistryError with `cause` whose message holds every word."""
    assert callable(call)
    with pytest.raises(RegistryError) as caught:
        call()
    error = caught.value
    assert error.cause == cause, error.as_dict()
    for word in words:
        assert word in error.message, (word, error.message)
    return error


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def repository_and_tag(name: str) -> tuple[str, str]:
    repository, tag = name.rsplit(":", 1)
    return repository, tag


@pytest.fixture(scope="module")
def docker_v2s2(basic_registry: BasicRegistry, oci_layouts: Layouts) -> PushedImage:
    """A single-platform Docker schema 2 image, pushed by skopeo with --format v2s2."""
    push(
        basic_registry,
        oci_layouts.app,
        APP_DOCKER,
        credentials=basic_registry.credentials,
        format_="v2s2",
    )
    pushed = inspect_image(
        basic_registry.ref(APP_DOCKER),
        env=basic_registry.env,
        skopeo_args=basic_registry.tls_args() + basic_registry.creds_args(),
    )
    assert pushed.media_type == DOCKER_MANIFEST, pushed
    return pushed


@pytest.fixture(scope="module")
def plain_many(plain_registry: PlainRegistry, oci_layouts: Layouts) -> str:
    """The plain registry's team-a/many, with the same 120 tags as the basic registry's."""
    first = f"{MANY_REPOSITORY}:{MANY_TAGS[0]}"
    push(plain_registry, oci_layouts.many, first, credentials=None)
    image = inspect_image(
        plain_registry.ref(first), env=plain_registry.env, skopeo_args=plain_registry.tls_args()
    )
    with httpx.Client(base_url=plain_registry.url, timeout=30) as client:

        def put(tag: str) -> None:
            answer = client.put(
                f"/v2/{MANY_REPOSITORY}/manifests/{tag}",
                content=image.raw_manifest,
                headers={"Content-Type": image.media_type},
            )
            assert answer.status_code == 201, answer.text

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(put, MANY_TAGS[1:]))
    return MANY_REPOSITORY


# --------------------------------------------------------------------------- network and TLS


def test_a_name_that_does_not_resolve_is_dns() -> None:
    with Registry("registry.pullkeeper-test.invalid", timeout=5) as registry:
        raises(
            Cause.DNS,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "cannot resolve registry.pullkeeper-test.invalid",
            "DNS",
        )


def test_a_closed_port_is_connection_refused() -> None:
    host = f"127.0.0.1:{closed_port()}"
    with Registry(host) as registry:
        raises(
            Cause.REFUSED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            f"{host} refused the connection",
            "running on that port",
        )


def test_a_server_that_never_answers_is_timeout() -> None:
    # The kernel completes the handshake into the backlog; nobody ever reads or writes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        with Registry(host, timeout=0.5, retries=0) as registry:
            raises(
                Cause.TIMEOUT,
                lambda: registry.get_manifest("team-a/app", "v1"),
                f"{host} did not answer in time",
            )


def test_an_untrusted_certificate_names_its_subject_and_issuer(
    basic_registry: BasicRegistry,
) -> None:
    assert basic_registry.ca_file is not None
    cert = x509.load_pem_x509_certificate(basic_registry.ca_file.read_bytes())
    subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    with Registry(basic_registry.host, login(basic_registry)) as registry:
        error = raises(
            Cause.TLS_UNTRUSTED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            f"the TLS certificate of {basic_registry.host} is not trusted",
            subject,
            issuer,
            f"pullkeeper registry trust {basic_registry.host}",
            "--ca-file",
        )
    assert error.details == {"subject": subject, "issuer": issuer}


def test_a_plain_http_port_over_tls_says_mark_it_insecure(plain_registry: PlainRegistry) -> None:
    with Registry(plain_registry.host) as registry:
        raises(
            Cause.TLS,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "does not speak TLS",
            "insecure",
        )


def test_plain_http_only_when_marked_insecure(plain_registry: PlainRegistry) -> None:
    image = plain_registry.image(APP)
    with Registry(plain_registry.host, tls=TLS(insecure=True)) as registry:
        fetched = registry.get_manifest(image.repository, image.tag)
        assert registry.ping().status_code == 200
    assert fetched.digest == image.digest
    assert fetched.body == image.raw_manifest


def test_mtls_without_a_client_certificate(mtls_registry: MtlsRegistry) -> None:
    with Registry(mtls_registry.host, tls=ca(mtls_registry)) as registry:
        raises(
            Cause.TLS,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "wants a client certificate",
            "none was sent",
            "--cert",
        )


def test_mtls_with_an_untrusted_client_certificate(mtls_registry: MtlsRegistry) -> None:
    tls = TLS(
        ca_file=mtls_registry.ca_file,
        client_cert=mtls_registry.untrusted_client_cert_file,
        client_key=mtls_registry.untrusted_client_key_file,
    )
    with Registry(mtls_registry.host, tls=tls) as registry:
        raises(
            Cause.TLS,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "wants a client certificate",
            "refused the one sent",
        )


def test_mtls_with_the_ca_bundle_and_client_certificate(mtls_registry: MtlsRegistry) -> None:
    image = mtls_registry.image(MULTI)
    tls = TLS(
        ca_file=mtls_registry.ca_file,
        client_cert=mtls_registry.client_cert_file,
        client_key=mtls_registry.client_key_file,
    )
    with Registry(mtls_registry.host, tls=tls) as registry:
        fetched = registry.get_manifest(image.repository, image.tag)
    assert (fetched.digest, fetched.media_type) == (image.digest, image.media_type)


def test_unreadable_tls_files_are_tls_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    raises(
        Cause.TLS,
        lambda: Registry("127.0.0.1:1", tls=TLS(ca_file=missing)),
        "cannot load the TLS files",
    )


# --------------------------------------------------------------------------- Basic auth


def test_basic_auth_pulls_after_learning_the_challenge(basic_registry: BasicRegistry) -> None:
    image = basic_registry.image(APP)
    with Registry(basic_registry.host, login(basic_registry), ca(basic_registry)) as registry:
        ping = registry.ping()
        assert ping.status_code == 401
        assert ping.headers["www-authenticate"].lower().startswith("basic ")
        before = registry.requests
        fetched = registry.get_manifest(image.repository, image.tag)
        # The challenge is known: credentials go up front, no 401 round trip.
        assert registry.requests - before == 1
        registry.verify_login()
    assert fetched.digest == image.digest


def test_basic_auth_wrong_password_is_unauthorized(basic_registry: BasicRegistry) -> None:
    wrong = Login(basic_registry.credentials.username, WRONG_PASSWORD)
    with Registry(basic_registry.host, wrong, ca(basic_registry)) as registry:
        raises(
            Cause.UNAUTHORIZED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "refused the login of 'alice'",
            "wrong user name or password",
        )
        raises(Cause.UNAUTHORIZED, registry.verify_login, "wrong user name or password")


def test_basic_registry_anonymous_is_no_credentials(basic_registry: BasicRegistry) -> None:
    with Registry(basic_registry.host, tls=ca(basic_registry)) as registry:
        raises(
            Cause.NO_CREDENTIALS,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "requires a login",
            "none was given",
        )
        raises(Cause.NO_CREDENTIALS, registry.verify_login, "requires a login")


def test_missing_repository_and_tag_are_not_found(basic_registry: BasicRegistry) -> None:
    with Registry(basic_registry.host, login(basic_registry), ca(basic_registry)) as registry:
        # distribution answers MANIFEST_UNKNOWN (not NAME_UNKNOWN) for a missing repository's
        # manifest; its tag list says NAME_UNKNOWN.
        raises(
            Cause.NOT_FOUND,
            lambda: registry.get_manifest("team-a/nothing-here", "v1"),
            "team-a/nothing-here:v1 does not exist",
        )
        raises(
            Cause.NOT_FOUND,
            lambda: registry.get_manifest("team-a/app", "gone"),
            "team-a/app:gone does not exist",
            "no such tag or digest",
        )
        absent = "sha256:" + "0" * 64
        raises(
            Cause.NOT_FOUND,
            lambda: registry.get_manifest("team-a/app", absent),
            f"team-a/app@{absent} does not exist",
        )
        raises(
            Cause.NOT_FOUND,
            lambda: list(registry.tags("team-a/nothing-here")),
            "the repository team-a/nothing-here does not exist",
        )


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize(
    ("name", "media_type"),
    [(APP, OCI_MANIFEST), (MULTI, OCI_INDEX), (MULTI_DOCKER, DOCKER_MANIFEST_LIST)],
)
def test_manifests_by_tag_and_digest_agree_with_skopeo(
    basic_registry: BasicRegistry, name: str, media_type: str
) -> None:
    image = basic_registry.image(name)
    assert image.media_type == media_type
    with Registry(basic_registry.host, login(basic_registry), ca(basic_registry)) as registry:
        by_tag = registry.get_manifest(image.repository, image.tag)
        by_digest = registry.get_manifest(image.repository, image.digest)
        head = registry.head_manifest(image.repository, image.tag)
        assert head == (image.digest, media_type, len(image.raw_manifest))
        for fetched in (by_tag, by_digest):
            assert fetched.digest == image.digest
            assert fetched.media_type == media_type
            assert fetched.body == image.raw_manifest
        if image.is_list:
            platforms = {str(d.platform): d.digest for d in by_tag.manifest.manifests if d.platform}
            assert platforms == dict(image.platform_digests)
            # Each platform's own manifest, by digest, is what the list names.
            for digest in image.platform_digests.values():
                child = registry.get_manifest(image.repository, digest)
                assert child.digest == digest
                assert not child.manifest.is_index
        else:
            assert by_tag.manifest.config is not None
            config = registry.get_blob(image.repository, by_tag.manifest.config.digest)
            assert str(oci.config_platform(config)) in image.platform_digests


def test_docker_schema_2_image_and_its_platform(
    basic_registry: BasicRegistry, docker_v2s2: PushedImage
) -> None:
    with Registry(basic_registry.host, login(basic_registry), ca(basic_registry)) as registry:
        by_tag = registry.get_manifest(docker_v2s2.repository, docker_v2s2.tag)
        by_digest = registry.get_manifest(docker_v2s2.repository, docker_v2s2.digest)
        assert by_tag.manifest.config is not None
        assert by_tag.manifest.config.media_type == oci.DOCKER_CONFIG
        config = registry.get_blob(docker_v2s2.repository, by_tag.manifest.config.digest)
    for fetched in (by_tag, by_digest):
        assert (fetched.digest, fetched.media_type) == (docker_v2s2.digest, DOCKER_MANIFEST)
        assert fetched.body == docker_v2s2.raw_manifest
    assert {str(oci.config_platform(config)): docker_v2s2.digest} == dict(
        docker_v2s2.platform_digests
    )


def test_the_check_reports_platforms_of_every_media_type(
    basic_registry: BasicRegistry, docker_v2s2: PushedImage
) -> None:
    candidate = pull_trial.Candidate("test", basic_registry.host, login(basic_registry))
    for image in (*(basic_registry.image(n) for n in (APP, MULTI, MULTI_DOCKER)), docker_v2s2):
        report = pull_trial.check(
            image.reference,
            [candidate],
            lambda _host: ca(basic_registry),
            platform="linux/arm64",
        )
        assert report.digest == image.digest, report.as_dict()
        assert report.media_type == image.media_type
        assert set(report.platforms) == set(image.platform_digests)
        arm = image.platform_digests.get("linux/arm64/v8")
        assert report.platform_available is (arm is not None)
        assert report.platform_digest == arm
        assert report.ok is (arm is not None)


def test_a_digest_mismatch_is_protocol_error(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    image = plain_registry.image(APP)
    proxy = fault_proxy()
    # Something in the middle changes the bytes (here: re-serialised JSON) but not the header.
    altered = json.dumps(json.loads(image.raw_manifest), indent=2).encode()
    assert altered != image.raw_manifest
    headers = {"Content-Type": image.media_type, "Docker-Content-Digest": image.digest}
    proxy.inject(r"/manifests/v1$", status=200, headers=headers, body=altered)
    proxy.inject(rf"/manifests/{image.digest}$", status=200, headers=headers, body=altered)
    with Registry(proxy.host, tls=TLS(insecure=True)) as registry:
        for reference in (image.tag, image.digest):
            error = raises(
                Cause.PROTOCOL,
                lambda r=reference: registry.get_manifest(image.repository, r),
                "does not match its digest",
                image.digest,
                "something between you and the registry changed it",
            )
            assert error.details["digest"] == image.digest
        assert proxy.pending_injections() == 0
        # The same request, unaltered, passes: the check is about the bytes.
        assert registry.get_manifest(image.repository, image.tag).digest == image.digest


# --------------------------------------------------------------------------- tags


def test_tags_of_the_real_registry(basic_registry: BasicRegistry) -> None:
    with Registry(basic_registry.host, login(basic_registry), ca(basic_registry)) as registry:
        registry.ping()
        before = registry.requests
        # distribution 2.8 ignores `n` on tags/list and answers everything in one page.
        asked_for_pages = list(registry.tags(basic_registry.many_repository, page_size=32))
        assert registry.requests - before == 1
        everything = list(registry.tags(basic_registry.many_repository))
    assert asked_for_pages == everything == list(basic_registry.many_tags)


def test_tags_are_followed_page_by_page(
    basic_registry: BasicRegistry, plain_many: str, fault_proxy: MakeFaultProxy
) -> None:
    proxy = fault_proxy()
    proxy.paginate_tags()
    with Registry(proxy.host, tls=TLS(insecure=True)) as registry:
        tags = list(registry.tags(plain_many, page_size=32))
        default_pages = list(registry.tags(plain_many))
    # Paged in the spec's lexical order: the same tags as the real registry lists.
    assert tags == default_pages == sorted(basic_registry.many_tags)
    assert len(tags) == len(set(tags)) == 120
    seen = proxy.requests_matching(r"/tags/list$")
    # 120 tags, 32 a page: four pages, each asked after the last tag of the one before;
    # then the proxy's default page of 100: two.
    assert [r.query for r in seen] == [
        "n=32",
        "last=tag-031&n=32",
        "last=tag-063&n=32",
        "last=tag-095&n=32",
        "",
        "last=tag-099&n=100",
    ], describe(seen)


# --------------------------------------------------------------------------- token auth


def test_the_bearer_flow_by_get(token_registry: TokenRegistry, token_server: TokenServer) -> None:
    image = token_registry.image(APP)
    with Registry(token_registry.host, login(token_registry), ca(token_registry)) as registry:
        ping = registry.ping()
        assert ping.status_code == 401
        challenge = ping.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and token_registry.realm in challenge
        fetched = registry.get_manifest(image.repository, image.tag)
    assert fetched.digest == image.digest
    [sent] = token_server.requests
    assert sent.method == "GET" and sent.status == 200
    assert sent.params["service"] == (token_registry.service,)
    assert sent.params["account"] == ("alice",)
    assert sent.scopes == ("repository:team-a/app:pull",)
    assert sent.username == "alice"
    assert [a.as_claim() for a in sent.granted] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull"]}
    ]


def test_a_token_is_cached_per_scope(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    app, multi = token_registry.image(APP), token_registry.image(MULTI)
    with Registry(token_registry.host, login(token_registry), ca(token_registry)) as registry:
        registry.get_manifest(app.repository, app.tag)
        registry.get_manifest(app.repository, app.digest)
        registry.head_manifest(app.repository, app.tag)
        assert token_server.request_count() == 1
        registry.get_manifest(multi.repository, multi.tag)
        assert token_server.request_count() == 2
        assert [r.scopes for r in token_server.requests] == [
            ("repository:team-a/app:pull",),
            ("repository:team-a/multi:pull",),
        ]
        registry.get_manifest(app.repository, app.tag)
        assert token_server.request_count() == 2


def test_a_short_lived_token_is_renewed(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    app = token_registry.image(APP)
    token_server.set_expires_in(1)
    with Registry(token_registry.host, login(token_registry), ca(token_registry)) as registry:
        registry.get_manifest(app.repository, app.tag)
        assert token_server.request_count() == 1
        threading.Event().wait(1.1)
        registry.get_manifest(app.repository, app.tag)
        assert token_server.request_count() == 2


def test_the_refresh_flow_by_post_with_an_identity_token(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    alice = token_registry.alice
    issued = httpx.get(
        token_registry.realm,
        verify=token_registry.ssl_context(),
        params={"service": token_registry.service, "offline_token": "true"},
        auth=(alice.username, alice.password),
    )
    assert issued.status_code == 200, issued.text
    refresh = issued.json()["refresh_token"]
    token_server.reset()
    image = token_registry.image(MULTI)
    with Registry(token_registry.host, Login(identity_token=refresh), ca(token_registry)) as r:
        assert r.get_manifest(image.repository, image.tag).digest == image.digest
    [sent] = token_server.requests
    assert (sent.method, sent.status) == ("POST", 200)
    assert sent.params["grant_type"] == ("refresh_token",)
    assert sent.params["refresh_token"] == (refresh,)
    assert sent.params["service"] == (token_registry.service,)
    assert sent.params["client_id"] != ("",)
    assert sent.scopes == ("repository:team-a/multi:pull",)

    token_server.revoke_refresh_tokens()
    with Registry(token_registry.host, Login(identity_token=refresh), ca(token_registry)) as r:
        raises(
            Cause.EXPIRED,
            lambda: r.get_manifest(image.repository, image.tag),
            "refused the identity token",
            "expired or was revoked",
            "log in again",
        )
        raises(Cause.EXPIRED, r.verify_login, "refused the identity token")


def test_anonymous_tokens_for_public_repositories(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    image = token_registry.image(PUBLIC)
    with Registry(token_registry.host, tls=ca(token_registry)) as registry:
        assert registry.get_manifest(image.repository, image.tag).digest == image.digest
    [sent] = token_server.requests
    assert (sent.method, sent.status, sent.username) == ("GET", 200, None)
    assert "account" not in sent.params
    assert sent.scopes == ("repository:public/hello:pull",)


def test_anonymous_on_a_private_repository_is_no_credentials(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    with Registry(token_registry.host, tls=ca(token_registry)) as registry:
        raises(
            Cause.NO_CREDENTIALS,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "requires a login to read team-a/app",
            "none was given",
        )
        raises(Cause.NO_CREDENTIALS, registry.verify_login, "requires a login")


def test_token_auth_wrong_password_is_unauthorized(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    wrong = Login("alice", WRONG_PASSWORD)
    with Registry(token_registry.host, wrong, ca(token_registry)) as registry:
        raises(
            Cause.UNAUTHORIZED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "refused the login of 'alice'",
            "wrong user name or password",
        )
        raises(Cause.UNAUTHORIZED, registry.verify_login, "wrong user name or password")
    assert {r.status for r in token_server.requests} == {401}


def test_a_valid_login_without_access_is_denied(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    bob = token_registry.bob
    own = token_registry.image(TEAM_B)
    with Registry(token_registry.host, Login(bob.username, bob.password), ca(token_registry)) as r:
        r.verify_login()
        assert r.get_manifest(own.repository, own.tag).digest == own.digest
        # What the registry answers bob's token for team-a: 401 with error=insufficient_scope.
        raw = r.request("GET", "/v2/team-a/app/manifests/v1", "repository:team-a/app:pull")
        assert raw.status_code == 401
        assert 'error="insufficient_scope"' in raw.headers["www-authenticate"]
        raises(
            Cause.DENIED,
            lambda: r.get_manifest("team-a/app", "v1"),
            "the login of 'bob' is valid",
            "has no access to team-a/app",
        )
    granted = [a for req in token_server.requests for a in req.granted if a.name == "team-a/app"]
    assert granted and all(a.actions == () for a in granted)


def test_insufficient_scope_is_denied_even_on_a_basic_challenge(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    # A registry that answers Basic and says why: the scope, not the password, is the problem.
    proxy = fault_proxy()
    basic = {"WWW-Authenticate": 'Basic realm="r"'}
    insufficient = {"WWW-Authenticate": 'Basic realm="r",error="insufficient_scope"'}
    proxy.inject(r"^/v2/$", status=401, headers=basic)
    proxy.inject(r"/manifests/", status=401, headers=insufficient, times=2)
    with Registry(proxy.host, Login("carol", "pw"), TLS(insecure=True)) as registry:
        registry.ping()
        raises(
            Cause.DENIED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "the login of 'carol' is valid",
        )
    sent = proxy.requests_matching(r"/manifests/")
    assert [r.header("authorization") is not None for r in sent] == [True, True], describe(sent)


def test_the_token_server_failing_is_server_error(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    sleeps = Sleeps()
    token_server.fail_next(4, status=503, retry_after=None)
    registry = Registry(
        token_registry.host, login(token_registry), ca(token_registry), sleep=sleeps
    )
    with registry:
        raises(
            Cause.SERVER_ERROR,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "failed on the token request",
            "try again later",
        )
    assert token_server.request_count() == 4
    assert sleeps.waits == [0.5, 1.0, 2.0]


def test_a_rate_limited_token_request_is_retried(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    image = token_registry.image(APP)
    token_server.fail_next(2, status=429, retry_after="2")
    sleeps = Sleeps()
    registry = Registry(
        token_registry.host, login(token_registry), ca(token_registry), sleep=sleeps
    )
    with registry:
        assert registry.get_manifest(image.repository, image.tag).digest == image.digest
    assert sleeps.waits == [2.0, 2.0]
    assert [r.status for r in token_server.requests] == [429, 429, 200]


# --------------------------------------------------------------------------- retries


def test_rate_limit_with_docker_hubs_numbers(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    proxy = fault_proxy()
    proxy.rate_limit(times=10, retry_after="3600")
    sleeps = Sleeps()
    with Registry(proxy.host, tls=TLS(insecure=True), sleep=sleeps) as registry:
        error = raises(
            Cause.RATE_LIMITED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "pull rate limit is reached",
            "100 pulls per 6 h",
            "0 left",
            "retry in 3600 s",
        )
    assert error.details == {"limit": "100;w=21600", "retry_after": 3600.0}
    # An hour is beyond the retry bound: no waiting, one request.
    assert sleeps.waits == []
    assert len(proxy.requests_matching(r"/manifests/")) == 1


def test_rate_limit_without_retry_after_backs_off_then_gives_up(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    proxy = fault_proxy()
    proxy.rate_limit(times=10, retry_after=None)
    sleeps = Sleeps()
    with Registry(proxy.host, tls=TLS(insecure=True), sleep=sleeps) as registry:
        raises(
            Cause.RATE_LIMITED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "100 pulls per 6 h",
            "wait before retrying",
        )
    assert sleeps.waits == [0.5, 1.0, 2.0]
    assert len(proxy.requests_matching(r"/manifests/")) == 4


def test_a_short_retry_after_is_honoured_then_succeeds(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    image = plain_registry.image(MULTI)
    proxy = fault_proxy()
    proxy.rate_limit(times=2, retry_after="3")
    sleeps = Sleeps()
    with Registry(proxy.host, tls=TLS(insecure=True), sleep=sleeps) as registry:
        assert registry.get_manifest(image.repository, image.tag).digest == image.digest
    assert sleeps.waits == [3.0, 3.0]
    seen = proxy.requests_matching(r"/manifests/")
    assert [(r.status, r.injected) for r in seen] == [
        (429, True),
        (429, True),
        (200, False),
    ], describe(seen)


def test_5xx_is_retried_then_server_error(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    image = plain_registry.image(APP)
    proxy = fault_proxy()
    body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "backend down"}]})
    proxy.inject(r"/manifests/", status=503, body=body, times=4)
    sleeps = Sleeps()
    with Registry(proxy.host, tls=TLS(insecure=True), sleep=sleeps) as registry:
        raises(
            Cause.SERVER_ERROR,
            lambda: registry.get_manifest(image.repository, image.tag),
            "failed on the manifest request for team-a/app:v1",
            "UNAVAILABLE: backend down",
            "try again later",
        )
        assert sleeps.waits == [0.5, 1.0, 2.0]
        assert len(proxy.requests_matching(r"/manifests/")) == 4
        # A 502 once is retried and the pull goes through.
        proxy.inject(r"/manifests/", status=502, times=1)
        assert registry.get_manifest(image.repository, image.tag).digest == image.digest
    assert sleeps.waits == [0.5, 1.0, 2.0, 0.5]


# --------------------------------------------------------------------------- blobs


def test_blob_redirects_go_to_storage_without_the_registry_credentials(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    image = plain_registry.image(APP)
    proxy = fault_proxy()
    # The registry face asks for Basic credentials (the plain registry behind accepts any),
    # so the client holds an Authorization it must not pass on to the storage host.
    proxy.inject(r"/blobs/", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    proxy.redirect_blobs()
    with Registry(proxy.host, Login("alice", "storage-test"), TLS(insecure=True)) as registry:
        fetched = registry.get_manifest(image.repository, image.tag)
        assert fetched.manifest.config is not None
        config = registry.get_blob(image.repository, fetched.manifest.config.digest)
    assert oci.sha256_digest(config) == fetched.manifest.config.digest
    assert str(oci.config_platform(config)) in image.platform_digests
    to_registry = proxy.requests_matching(r"/blobs/", listener="proxy")
    to_storage = proxy.requests_matching(r"/blobs/", listener="blobs")
    everything = describe(proxy.requests)
    assert [r.status for r in to_registry] == [401, 307], everything
    sent = base64.b64encode(b"alice:storage-test").decode()
    assert to_registry[1].header("authorization") == f"Basic {sent}", everything
    assert [(r.status, r.header("authorization")) for r in to_storage] == [(200, None)], everything
    assert "X-Amz-Signature=" in to_storage[0].query


# --------------------------------------------------------------------------- pool and policy


def test_the_pool_shares_a_client_and_its_token_across_threads(
    token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    image = token_registry.image(APP)
    with RegistryPool() as pool:
        clients = {id(pool.get(token_registry.host, login(token_registry), ca(token_registry)))}
        barrier = threading.Barrier(20)

        def pull(_: int) -> str:
            client = pool.get(token_registry.host, login(token_registry), ca(token_registry))
            clients.add(id(client))
            barrier.wait(timeout=30)
            return client.get_manifest(image.repository, image.tag).digest

        with ThreadPoolExecutor(max_workers=20) as threads:
            digests = list(threads.map(pull, range(20)))
    assert digests == [image.digest] * 20
    assert len(clients) == 1
    assert token_server.request_count() == 1
    assert token_server.requests[0].scopes == ("repository:team-a/app:pull",)


def test_a_check_the_policy_forbids_contacts_no_registry(basic_registry: BasicRegistry) -> None:
    with RegistryPool() as pool:
        report = pull_trial.check(
            basic_registry.image(APP).reference,
            [pull_trial.Candidate("test", basic_registry.host, login(basic_registry))],
            lambda _host: ca(basic_registry),
            allowed=lambda ref: f"{ref.domain} is not on the allowlist",
            pool=pool,
        )
        assert pool.requests == 0
    assert not report.ok
    assert report.error is not None and report.error.cause == Cause.NOT_ALLOWED
    assert report.error.message == f"{basic_registry.host} is not on the allowlist"


def test_insecure_uses_https_without_verifying_when_the_registry_has_it(
    basic_registry: BasicRegistry,
) -> None:
    image = basic_registry.image(APP)
    with Registry(basic_registry.host, login(basic_registry), TLS(insecure=True)) as registry:
        assert registry.get_manifest(image.repository, image.tag).digest == image.digest
        assert registry.ping().url.scheme == "https"


def test_a_registry_saying_the_credential_expired_is_expired(
    plain_registry: PlainRegistry, fault_proxy: MakeFaultProxy
) -> None:
    # What Amazon ECR answers once its 12-hour token has run out.
    proxy = fault_proxy()
    body = json.dumps(
        {
            "errors": [
                {
                    "code": "DENIED",
                    "message": "Your authorization token has expired. "
                    "Reauthenticate and try again.",
                }
            ]
        }
    )
    proxy.inject(r"/manifests/", status=403, body=body)
    with Registry(proxy.host, Login("AWS", "an-old-token"), TLS(insecure=True)) as registry:
        raises(
            Cause.EXPIRED,
            lambda: registry.get_manifest("team-a/app", "v1"),
            "says the credential has expired",
            "Your authorization token has expired",
            "renew it",
        )
