"""Real registries (Debian's `docker-registry`, distribution 2.8.2) started as plain processes,
seeded with real `skopeo copy` pushes, described by frozen dataclasses the fixtures return.

Each registry listens on 127.0.0.1 on a free port, keeps its data in a temporary directory and
is killed when its context manager exits.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import (
    Result,
    _free_port,
    _v2_status,
    build_oci_layout,
    isolated_env,
    run,
)
from tests.registry import pki
from tests.registry.images import (
    PushedImage,
    build_multi_platform_layout,
    build_single_layout,
    inspect_image,
)
from tests.registry.token_server import Grant, TokenServer

LAYOUT_TAG = "v1"  # the tag inside every OCI layout below (oci:DIR:v1)
APP = "team-a/app:v1"
MULTI = "team-a/multi:v1"
MULTI_DOCKER = "team-a/multi-docker:v1"
TEAM_B = "team-b/other:v1"
PUBLIC = "public/hello:v1"
MANY_REPOSITORY = "team-a/many"
MANY_TAG_COUNT = 120
# Zero-padded, so the registry's lexical tag order is also the numeric order.
MANY_TAGS = tuple(f"tag-{i:03d}" for i in range(MANY_TAG_COUNT))

# skopeo processes run at once while seeding a registry (the machine may have two cores).
_PARALLEL_SKOPEO = 4

TOKEN_SERVICE = "pullkeeper-test-registry"
TOKEN_ISSUER = "pullkeeper-test-token-server"


# --------------------------------------------------------------------------- descriptions


@dataclass(frozen=True, kw_only=True)
class Credentials:
    username: str
    password: str

    @property
    def creds(self) -> str:
        """user:password, as skopeo's --creds / --src-creds / --dest-creds take it."""
        return f"{self.username}:{self.password}"

    @property
    def authorization(self) -> str:
        """The Basic Authorization header value (UTF-8, as distribution compares bytes)."""
        return "Basic " + base64.b64encode(self.creds.encode("utf-8")).decode("ascii")


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """How to reach a registry: address, TLS material, an isolated environment for skopeo."""

    host: str  # "127.0.0.1:PORT": image domain and credential-file key
    url: str  # "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT"
    ca_file: Path | None  # the server certificate to trust; None for plain HTTP
    cert_dir: Path | None  # skopeo --cert-dir: ca.crt (+ client.cert/.key for mTLS)
    env: Mapping[str, str]  # isolated HOME, XDG dirs: no credentials lent from outside

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")

    def tls_args(self, prefix: str = "") -> list[str]:
        """skopeo's TLS flags; prefix "src-" or "dest-" for `skopeo copy`."""
        if not self.tls:
            return [f"--{prefix}tls-verify=false"]
        return [f"--{prefix}cert-dir", str(self.cert_dir)]

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts this registry's certificate (httpx: `verify=registry.ssl_context()`)."""
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def ref(self, name: str) -> str:
        """host/name, e.g. ref("team-a/app:v1"), for docker:// references."""
        return f"{self.host}/{name}"

    def skopeo(self, *args: str) -> Result:
        return run(["skopeo", *args], env=self.env)


@dataclass(frozen=True, kw_only=True)
class RunningRegistry(Endpoint):
    credentials: Credentials | None  # who pushed the standard images; None without auth
    images: Mapping[str, PushedImage]  # "team-a/app:v1" -> what the registry serves
    data_dir: Path
    config_file: Path
    log_file: Path  # the registry's log and access log

    def image(self, name: str) -> PushedImage:
        return self.images[name]

    def creds_args(self, credentials: Credentials | None = None, prefix: str = "") -> list[str]:
        """`--creds u:p` (or --src-creds/--dest-creds), for these or the default credentials."""
        chosen = credentials or self.credentials
        return [f"--{prefix}creds", chosen.creds] if chosen else []

    def inspect(self, name: str, *extra: str, credentials: Credentials | None = None) -> Result:
        """skopeo inspect docker://host/name with TLS flags and credentials filled in."""
        return self.skopeo(
            "inspect",
            *self.tls_args(),
            *self.creds_args(credentials),
            *extra,
            f"docker://{self.ref(name)}",
        )


@dataclass(frozen=True, kw_only=True)
class BasicRegistry(RunningRegistry):
    """htpasswd (bcrypt) auth over self-signed TLS; any valid user may access any repository."""

    credentials: Credentials
    many_repository: str  # "team-a/many"
    many_tags: tuple[str, ...]  # all 120 tags in the order the registry lists them (unsorted)
    many_digest: str  # every one of those tags names this manifest


@dataclass(frozen=True, kw_only=True)
class TokenRegistry(RunningRegistry):
    """distribution token auth over self-signed TLS, with its token server."""

    credentials: Credentials  # alice: pull+push team-a/*
    bob: Credentials  # pull team-b/* only
    seeder: Credentials  # everything, catalog included; used to push the images
    realm: str  # the token endpoint, "https://127.0.0.1:PORT/token"
    service: str
    issuer: str
    token_server_url: str  # "https://127.0.0.1:PORT", the registry's certificate
    token_server: TokenServer  # full controls; the methods below are shortcuts
    signing_cert_file: Path  # the token signer, as put into the rootcertbundle

    @property
    def alice(self) -> Credentials:
        return self.credentials

    def token_requests(self, method: str | None = None) -> int:
        """Requests the token server received since the last reset (all, or by method)."""
        return self.token_server.request_count(method)

    def set_token_expires_in(self, seconds: int) -> None:
        self.token_server.set_expires_in(seconds)

    def fail_next_token_requests(
        self, count: int, *, status: int = 429, retry_after: str | None = "1"
    ) -> None:
        self.token_server.fail_next(count, status=status, retry_after=retry_after)

    def reset_token_server(self) -> None:
        self.token_server.reset()


@dataclass(frozen=True, kw_only=True)
class PlainRegistry(RunningRegistry):
    """Plain HTTP, no auth: the "insecure registry" case."""


@dataclass(frozen=True, kw_only=True)
class MtlsRegistry(RunningRegistry):
    """TLS requiring a client certificate signed by `client_ca_file`; no other auth.

    `cert_dir` holds ca.crt plus the trusted client.cert/client.key, so skopeo with
    `tls_args()` just works; the other directories are for the failure cases.
    """

    client_cert_file: Path
    client_key_file: Path
    client_ca_file: Path  # the registry's http.tls.clientcas
    untrusted_client_cert_file: Path  # signed by a CA the registry does not know
    untrusted_client_key_file: Path
    untrusted_cert_dir: Path  # ca.crt + the untrusted client.cert/.key
    server_only_cert_dir: Path  # ca.crt only: no client certificate at all

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        context = super().ssl_context()
        if client_cert:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context


def _endpoint_fields(endpoint: Endpoint) -> dict[str, Any]:
    return {f.name: getattr(endpoint, f.name) for f in fields(Endpoint)}


# --------------------------------------------------------------------------- images


@dataclass(frozen=True, kw_only=True)
class Layouts:
    """OCI layouts (tag LAYOUT_TAG) built once per session and pushed to every registry."""

    app: Path  # build_oci_layout from the integration suite: team-a/app:v1
    multi: Path  # OCI index, linux/amd64 + linux/arm64/v8
    team_b: Path
    public: Path
    many: Path


def build_layouts(base: Path) -> Layouts:
    layouts = Layouts(
        app=base / "app",
        multi=base / "multi",
        team_b=base / "team-b",
        public=base / "public",
        many=base / "many",
    )
    build_oci_layout(layouts.app, LAYOUT_TAG)
    build_multi_platform_layout(layouts.multi, LAYOUT_TAG)
    # Distinct content per repository: a client reading the wrong one sees another digest.
    build_single_layout(layouts.team_b, LAYOUT_TAG, b"team-b's image\n")
    build_single_layout(layouts.public, LAYOUT_TAG, b"a public image\n")
    build_single_layout(layouts.many, LAYOUT_TAG, b"one image, many tags\n")
    return layouts


def push(
    registry: Endpoint,
    layout: Path,
    name: str,
    *,
    credentials: Credentials | None,
    all_platforms: bool = False,
    format_: str | None = None,
) -> None:
    args = ["copy", "--quiet", *registry.tls_args("dest-")]
    if credentials:
        args += ["--dest-creds", credentials.creds]
    if all_platforms:
        args.append("--all")
    if format_:
        args += ["--format", format_]
    pushed = registry.skopeo(*args, f"oci:{layout}:{LAYOUT_TAG}", f"docker://{registry.ref(name)}")
    assert pushed.returncode == 0, pushed.describe()


def push_and_inspect(
    registry: Endpoint,
    plan: Sequence[tuple[str, Path, bool, str | None]],
    credentials: Credentials | None,
) -> dict[str, PushedImage]:
    """Push (name, layout, --all, --format) each, then record what the registry serves.

    Concurrently: each skopeo run mostly waits (process start, TLS, token round trips), so
    this roughly halves a fixture's start-up even on two cores.
    """

    def push_one(step: tuple[str, Path, bool, str | None]) -> None:
        name, layout, all_platforms, format_ = step
        push(
            registry,
            layout,
            name,
            credentials=credentials,
            all_platforms=all_platforms,
            format_=format_,
        )

    args = registry.tls_args() + (["--creds", credentials.creds] if credentials else [])

    def inspect_one(name: str) -> PushedImage:
        return inspect_image(registry.ref(name), env=registry.env, skopeo_args=args)

    with ThreadPoolExecutor(max_workers=_PARALLEL_SKOPEO) as pool:
        list(pool.map(push_one, plan))
        names = [name for name, *_ in plan]
        return dict(zip(names, pool.map(inspect_one, names), strict=True))


def standard_plan(layouts: Layouts) -> list[tuple[str, Path, bool, str | None]]:
    return [
        (APP, layouts.app, False, None),
        (MULTI, layouts.multi, True, None),
        # --format v2s2 with --all turns the OCI index into a Docker manifest list.
        (MULTI_DOCKER, layouts.multi, True, "v2s2"),
    ]


# --------------------------------------------------------------------------- processes


@contextmanager
def registry_process(
    base: Path,
    *,
    env: Mapping[str, str],
    tls: Mapping[str, Any] | None,
    auth: Mapping[str, Any] | None,
    ready_context: ssl.SSLContext,
    ready_status: int,
) -> Iterator[tuple[str, Path, Path, Path]]:
    """`docker-registry serve` until exit; yields (host, data dir, config file, log file)."""
    data = base / "data"
    data.mkdir()
    config_file = base / "config.yml"
    log_file = base / "registry.log"
    scheme = "https" if tls else "http"
    proc: subprocess.Popen[bytes] | None = None
    host = ""
    # A free port can be taken between probing and binding: try a few.
    for _attempt in range(3):
        host = f"127.0.0.1:{_free_port()}"
        http: dict[str, Any] = {"addr": host, "secret": "registry-tests-only"}
        if tls:
            http["tls"] = dict(tls)
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True}},
            "http": http,
        }
        if auth:
            config["auth"] = dict(auth)
        # JSON is YAML: no need for a YAML writer here.
        config_file.write_text(json.dumps(config, indent=1))
        with log_file.open("ab") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
            )
        status = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            status = _v2_status(f"{scheme}://{host}/v2/", ready_context)
            if status is not None:
                break
            time.sleep(0.02)
        if status == ready_status:
            break
        proc.kill()
        proc.wait(timeout=10)
        proc = None
    if proc is None:
        pytest.fail(
            f"docker-registry did not come up answering {ready_status} on GET /v2/:\n"
            + log_file.read_text(errors="replace")
        )
    try:
        yield host, data, config_file, log_file
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _cert_dir(path: Path, ca: Path, client: pki.Issued | None = None) -> Path:
    """A directory as skopeo --cert-dir wants: *.crt CAs, client.cert with client.key."""
    path.mkdir()
    shutil.copyfile(ca, path / "ca.crt")
    if client is not None:
        shutil.copyfile(client.cert_file, path / "client.cert")
        shutil.copyfile(client.key_file, path / "client.key")
    return path


def _server_tls(base: Path) -> tuple[pki.Issued, Path, dict[str, Any]]:
    server = pki.self_signed_server(base / "server")
    cert_dir = _cert_dir(base / "certs", server.cert_file)
    return server, cert_dir, {"certificate": str(server.cert_file), "key": str(server.key_file)}


# --------------------------------------------------------------------------- registries

BASIC_USER = "alice"
# ':' (user:password splitting), '&<>' (HTML escaping in JSON writers) and non-ASCII.
BASIC_PASSWORD = "b4sic:p&<>-pässwörd"  # a throwaway test credential


@contextmanager
def basic_registry(base: Path, layouts: Layouts) -> Iterator[BasicRegistry]:
    env = isolated_env(base / "home")
    server, cert_dir, tls = _server_tls(base)
    hashed = run(["htpasswd", "-Bbn", BASIC_USER, BASIC_PASSWORD], env=env)
    assert hashed.returncode == 0 and hashed.stdout.startswith(f"{BASIC_USER}:$2"), (
        hashed.describe()
    )
    (base / "htpasswd").write_bytes(hashed.out)
    auth = {"htpasswd": {"realm": "basic-realm", "path": str(base / "htpasswd")}}
    credentials = Credentials(username=BASIC_USER, password=BASIC_PASSWORD)
    context = ssl.create_default_context(cafile=str(server.cert_file))
    with registry_process(
        base, env=env, tls=tls, auth=auth, ready_context=context, ready_status=401
    ) as (host, data, config_file, log_file):
        endpoint = Endpoint(
            host=host, url=f"https://{host}", ca_file=server.cert_file, cert_dir=cert_dir, env=env
        )
        first = f"{MANY_REPOSITORY}:{MANY_TAGS[0]}"
        images = push_and_inspect(
            endpoint,
            [*standard_plan(layouts), (first, layouts.many, False, None)],
            credentials,
        )
        many = images[first]
        many_tags = _tag_many(endpoint, credentials, many)
        yield BasicRegistry(
            **_endpoint_fields(endpoint),
            credentials=credentials,
            images=images,
            data_dir=data,
            config_file=config_file,
            log_file=log_file,
            many_repository=MANY_REPOSITORY,
            many_tags=many_tags,
            many_digest=many.digest,
        )


def _tag_many(endpoint: Endpoint, credentials: Credentials, image: PushedImage) -> tuple[str, ...]:
    """PUT the pushed manifest's bytes under the other tags (one skopeo push is enough)."""
    with httpx.Client(
        base_url=endpoint.url,
        verify=endpoint.ssl_context(),
        headers={"Authorization": credentials.authorization},
        timeout=30,
    ) as client:

        def put(tag: str) -> None:
            answer = client.put(
                f"/v2/{MANY_REPOSITORY}/manifests/{tag}",
                content=image.raw_manifest,
                headers={"Content-Type": image.media_type},
            )
            assert answer.status_code == 201, (tag, answer.status_code, answer.text)
            assert answer.headers["Docker-Content-Digest"] == image.digest, answer.headers

        # httpx.Client is thread-safe; a few connections in parallel cut the wait.
        with ThreadPoolExecutor(max_workers=_PARALLEL_SKOPEO) as pool:
            list(pool.map(put, MANY_TAGS[1:]))
        listed = client.get(f"/v2/{MANY_REPOSITORY}/tags/list")
        assert listed.status_code == 200, listed.text
    tags = tuple(listed.json()["tags"])
    assert sorted(tags) == list(MANY_TAGS), tags
    return tags


TOKEN_USERS = {
    "alice": "t0ken:älice-pass",  # throwaway test credentials
    "bob": "b0b:pässword",
    "seeder": "seeder-only-for-fixtures",
}
TOKEN_ACL = (
    Grant(
        user="alice",
        resource_type="repository",
        pattern="team-a/*",
        actions=frozenset({"pull", "push"}),
    ),
    Grant(user="bob", resource_type="repository", pattern="team-b/*", actions=frozenset({"pull"})),
    Grant(user=None, resource_type="repository", pattern="public/*", actions=frozenset({"pull"})),
    Grant(user="seeder", resource_type="repository", pattern="*", actions=frozenset({"*"})),
    Grant(user="seeder", resource_type="registry", pattern="*", actions=frozenset({"*"})),
)


@contextmanager
def token_registry(base: Path, layouts: Layouts) -> Iterator[TokenRegistry]:
    env = isolated_env(base / "home")
    server, cert_dir, tls = _server_tls(base)
    signer = pki.token_signing_certificate(base / "token-signer", "pullkeeper test token signer")
    # Over TLS with the registry's certificate, as real token servers are: a login goes to
    # an https realm only.
    token_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    token_tls.load_cert_chain(server.cert_file, server.key_file)
    tokens = TokenServer(
        service=TOKEN_SERVICE,
        issuer=TOKEN_ISSUER,
        signer=signer,
        users=TOKEN_USERS,
        acl=TOKEN_ACL,
        tls=token_tls,
    )
    tokens.start()
    try:
        auth = {
            "token": {
                "realm": tokens.realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(signer.cert_file),
            }
        }
        context = ssl.create_default_context(cafile=str(server.cert_file))
        with registry_process(
            base, env=env, tls=tls, auth=auth, ready_context=context, ready_status=401
        ) as (host, data, config_file, log_file):
            endpoint = Endpoint(
                host=host,
                url=f"https://{host}",
                ca_file=server.cert_file,
                cert_dir=cert_dir,
                env=env,
            )
            users = {u: Credentials(username=u, password=p) for u, p in TOKEN_USERS.items()}
            images = push_and_inspect(
                endpoint,
                [
                    *standard_plan(layouts),
                    (TEAM_B, layouts.team_b, False, None),
                    (PUBLIC, layouts.public, False, None),
                ],
                users["seeder"],
            )
            # Tests count their own token requests, not the seeding's.
            tokens.reset()
            yield TokenRegistry(
                **_endpoint_fields(endpoint),
                credentials=users["alice"],
                bob=users["bob"],
                seeder=users["seeder"],
                images=images,
                data_dir=data,
                config_file=config_file,
                log_file=log_file,
                realm=tokens.realm,
                service=TOKEN_SERVICE,
                issuer=TOKEN_ISSUER,
                token_server_url=tokens.url,
                token_server=tokens,
                signing_cert_file=signer.cert_file,
            )
    finally:
        tokens.stop()


@contextmanager
def plain_registry(base: Path, layouts: Layouts) -> Iterator[PlainRegistry]:
    env = isolated_env(base / "home")
    with registry_process(
        base,
        env=env,
        tls=None,
        auth=None,
        ready_context=ssl.create_default_context(),
        ready_status=200,
    ) as (host, data, config_file, log_file):
        endpoint = Endpoint(host=host, url=f"http://{host}", ca_file=None, cert_dir=None, env=env)
        yield PlainRegistry(
            **_endpoint_fields(endpoint),
            credentials=None,
            images=push_and_inspect(endpoint, standard_plan(layouts), None),
            data_dir=data,
            config_file=config_file,
            log_file=log_file,
        )


@contextmanager
def mtls_registry(base: Path, layouts: Layouts) -> Iterator[MtlsRegistry]:
    env = isolated_env(base / "home")
    server = pki.self_signed_server(base / "server")
    client_ca = pki.certificate_authority(base / "client-ca", "pullkeeper test client CA")
    client = pki.client_certificate(base / "client", client_ca, "pullkeeper-test-client")
    rogue_ca = pki.certificate_authority(base / "rogue-ca", "an untrusted client CA")
    rogue = pki.client_certificate(base / "rogue-client", rogue_ca, "pullkeeper-test-client")
    cert_dir = _cert_dir(base / "certs", server.cert_file, client)
    untrusted_dir = _cert_dir(base / "certs-untrusted", server.cert_file, rogue)
    server_only_dir = _cert_dir(base / "certs-server-only", server.cert_file)
    tls = {
        "certificate": str(server.cert_file),
        "key": str(server.key_file),
        # Makes distribution require and verify a client certificate.
        "clientcas": [str(client_ca.cert_file)],
    }
    context = ssl.create_default_context(cafile=str(server.cert_file))
    context.load_cert_chain(client.cert_file, client.key_file)
    with registry_process(
        base, env=env, tls=tls, auth=None, ready_context=context, ready_status=200
    ) as (host, data, config_file, log_file):
        endpoint = Endpoint(
            host=host, url=f"https://{host}", ca_file=server.cert_file, cert_dir=cert_dir, env=env
        )
        yield MtlsRegistry(
            **_endpoint_fields(endpoint),
            credentials=None,
            images=push_and_inspect(endpoint, standard_plan(layouts), None),
            data_dir=data,
            config_file=config_file,
            log_file=log_file,
            client_cert_file=client.cert_file,
            client_key_file=client.key_file,
            client_ca_file=client_ca.cert_file,
            untrusted_client_cert_file=rogue.cert_file,
            untrusted_client_key_file=rogue.key_file,
            untrusted_cert_dir=untrusted_dir,
            server_only_cert_dir=server_only_dir,
        )
