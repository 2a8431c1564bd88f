"""`pullkeeper check` offline, as a user runs it: the real executable, an isolated HOME,
credential files on disk and real registries. Expected digests and platforms are what
skopeo recorded when it pushed the images.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import Result, assert_one_line_error, b64, isolated_env, pk
from tests.registry.recorder import ChallengingRegistry, Recorder
from tests.registry.servers import (
    APP,
    MULTI,
    MULTI_DOCKER,
    PUBLIC,
    TEAM_B,
    BasicRegistry,
    Credentials,
    MtlsRegistry,
    PlainRegistry,
    TokenRegistry,
)
from tests.registry.token_server import TokenServer

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-real-password-31"  # a throwaway test value


def config_file(path: Path, host: str, credentials: Credentials) -> Path:
    """A docker config.json with one `auth` entry, as `docker login` writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {host: {"auth": b64(credentials.creds)}}}))
    return path


@dataclass(frozen=True)
class Desk:
    """Where the user stands: a working directory with credential files, an isolated HOME."""

    cwd: Path
    env: dict[str, str]
    secrets: tuple[str, ...]

    def pk(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = pk(*args, env=env or self.env, cwd=self.cwd)
        assert "Traceback" not in result.stderr, result.describe()
        for secret in self.secrets:
            assert secret not in result.stdout + result.stderr, result.describe()
        return result


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory,
    token_registry: TokenRegistry,
    basic_registry: BasicRegistry,
) -> Desk:
    base = tmp_path_factory.mktemp("check-cli")
    alice, bob = token_registry.alice, token_registry.bob
    wrong = Credentials(username=alice.username, password=WRONG_PASSWORD)
    config_file(base / "alice.json", token_registry.host, alice)
    config_file(base / "wrong.json", token_registry.host, wrong)
    config_file(base / "bob.json", token_registry.host, bob)
    config_file(base / "basic.json", basic_registry.host, basic_registry.credentials)
    for registry in (token_registry, basic_registry):
        assert registry.ca_file is not None
        (base / f"{registry.host.replace(':', '_')}.crt").write_bytes(registry.ca_file.read_bytes())
    # Nothing stored by `registry trust`, no docker config: only what each test gives.
    env = isolated_env(base / "home")
    return Desk(
        base,
        env,
        (alice.password, bob.password, WRONG_PASSWORD, basic_registry.credentials.password),
    )


def ca(registry: TokenRegistry | BasicRegistry) -> list[str]:
    return ["--ca-file", f"{registry.host.replace(':', '_')}.crt"]


def configs(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--config", f"{name}.json")]


# --------------------------------------------------------------------------- which credential


def test_three_configs_the_working_one_last(desk: Desk, token_registry: TokenRegistry) -> None:
    image = token_registry.image(MULTI)
    host = token_registry.host
    result = desk.pk(
        "check", image.reference, *configs("wrong", "bob", "alice"), *ca(token_registry)
    )
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"image:       {image.reference}",
        "credentials, in the order the kubelet tries them:",
    ]
    assert lines[2].startswith(f"  1. wrong.json (alice@{host}): fails: ")
    assert "refused the login of 'alice': wrong user name or password" in lines[2]
    assert lines[3].startswith(f"  2. bob.json (bob@{host}): fails: ")
    assert "the login of 'bob' is valid" in lines[3]
    assert "has no access to team-a/multi" in lines[3]
    assert lines[4] == f"  3. alice.json (alice@{host}): works"
    assert f"digest:      {image.digest}" in lines
    assert f"platforms:   {', '.join(image.platform_digests)}" in lines
    assert "pull policy: IfNotPresent" in lines
    assert lines[-1] == "result:      can pull"


def test_three_configs_the_working_one_first(desk: Desk, token_registry: TokenRegistry) -> None:
    image = token_registry.image(APP)
    args = ["check", image.reference, *configs("alice", "wrong", "bob"), *ca(token_registry)]
    first = desk.pk(*args)
    assert first.returncode == 0, first.describe()
    lines = first.stdout.splitlines()
    assert lines[2] == f"  1. alice.json (alice@{token_registry.host}): works"
    assert lines[3] == (
        "  (2 more not tried: wrong.json, bob.json; the kubelet stops at the first that works)"
    )

    every = desk.pk(*args, "--all", "-o", "json")
    assert every.returncode == 0, every.describe()
    report = every.json()
    assert [(a["source"], a["username"], a["ok"], a["cause"]) for a in report["attempts"]] == [
        ("alice.json", "alice", True, None),
        ("wrong.json", "alice", False, "unauthorized"),
        ("bob.json", "bob", False, "denied"),
    ]
    assert report["not_tried"] == 0
    assert "wrong user name or password" in report["attempts"][1]["message"]
    assert "has no access to team-a/app" in report["attempts"][2]["message"]
    assert report["ok"] is True and report["error"] is None


def test_a_more_specific_key_is_tried_first_whatever_the_file_order(
    desk: Desk, token_registry: TokenRegistry
) -> None:
    image = token_registry.image(APP)
    specific = config_file(
        desk.cwd / "specific" / "wrong-team-a.json",
        f"{token_registry.host}/team-a",
        Credentials(username="alice", password=WRONG_PASSWORD),
    )
    result = desk.pk(
        "check",
        image.reference,
        *configs("alice"),
        "--config",
        str(specific),
        *ca(token_registry),
        "-o",
        "json",
    )
    assert result.returncode == 0, result.describe()
    report = result.json()
    assert [(a["source"], a["registry"], a["cause"]) for a in report["attempts"]] == [
        (str(specific), f"{token_registry.host}/team-a", "unauthorized"),
        ("alice.json", token_registry.host, None),
    ]


# --------------------------------------------------------------------------- exit status


def test_cannot_pull_is_exit_status_1(desk: Desk, token_registry: TokenRegistry) -> None:
    image = token_registry.image(APP)
    refused = desk.pk("check", image.reference, *configs("wrong"), *ca(token_registry))
    assert refused.returncode == 1, refused.describe()
    last = refused.stdout.splitlines()[-1]
    assert last.startswith("result:      cannot pull: ")
    assert "wrong user name or password" in last

    missing = image.reference.replace(":v1", ":no-such-tag")
    gone = desk.pk("check", missing, *configs("alice"), *ca(token_registry), "-o", "json")
    assert gone.returncode == 1, gone.describe()
    assert gone.json()["error"]["cause"] == "not_found"
    assert gone.json()["digest"] is None


def test_bad_input_is_exit_status_2(desk: Desk, token_registry: TokenRegistry) -> None:
    image = token_registry.image(APP).reference
    invalid = assert_one_line_error(desk.pk("check", "Not/A:Valid:Ref", *configs("alice")))
    assert "is not a valid image reference" in invalid
    platform = assert_one_line_error(
        desk.pk("check", image, *configs("alice"), "--platform", "linux")
    )
    assert "is not a platform" in platform
    missing = assert_one_line_error(desk.pk("check", image, *configs("no-such-file")))
    assert "no-such-file.json" in missing
    policy = desk.pk("check", image, "--pull-policy", "Sometimes")
    assert policy.returncode == 2, policy.describe()


# --------------------------------------------------------------------------- the JSON report


def test_json_report_with_platforms_and_pull_policy(
    desk: Desk, token_registry: TokenRegistry
) -> None:
    multi = token_registry.image(MULTI)
    arm = desk.pk(
        "check",
        multi.reference,
        *configs("alice"),
        *ca(token_registry),
        "--platform",
        "linux/arm64",
        "--pull-policy",
        "Always",
        "-o",
        "json",
    )
    assert arm.returncode == 0, arm.describe()
    report = arm.json()
    assert report["image"] == report["reference"] == multi.reference
    assert (report["registry"], report["repository"]) == (token_registry.host, "team-a/multi")
    assert report["digest"] == multi.digest
    assert report["media_type"] == multi.media_type
    assert report["platforms"] == list(multi.platform_digests)
    assert report["platform"] == "linux/arm64"
    assert report["platform_available"] is True
    assert report["platform_digest"] == multi.platform_digests["linux/arm64/v8"]
    assert report["pull_policy"] == "Always"

    absent = desk.pk(
        "check",
        multi.reference,
        *configs("alice"),
        *ca(token_registry),
        "--platform",
        "linux/s390x",
        "-o",
        "json",
    )
    assert absent.returncode == 1, absent.describe()
    report = absent.json()
    assert report["digest"] == multi.digest
    assert report["platform_available"] is False and report["platform_digest"] is None
    assert report["attempts"][0]["ok"] is True
    assert report["error"]["cause"] == "not_found"
    assert "has no linux/s390x image" in report["error"]["message"]
    assert report["pull_policy"] == "IfNotPresent"


def test_a_single_images_platform_comes_from_its_config(
    desk: Desk, token_registry: TokenRegistry
) -> None:
    app = token_registry.image(APP)
    result = desk.pk(
        "check",
        app.reference,
        *configs("alice"),
        *ca(token_registry),
        "--platform",
        "linux/amd64",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.describe()
    report = result.json()
    assert report["digest"] == app.digest
    assert report["platforms"] == list(app.platform_digests)
    assert (report["platform_available"], report["platform_digest"]) == (True, app.digest)


def test_latest_is_the_default_tag_and_always_pulled(
    desk: Desk, token_registry: TokenRegistry
) -> None:
    untagged = f"{token_registry.host}/team-a/app"
    result = desk.pk("check", untagged, *configs("alice"), *ca(token_registry), "-o", "json")
    # The fixtures push no :latest: the default tag is asked for and not found.
    assert result.returncode == 1, result.describe()
    report = result.json()
    assert report["reference"] == f"{untagged}:latest"
    assert report["pull_policy"] == "Always"
    assert report["error"]["cause"] == "not_found"
    assert "team-a/app:latest does not exist" in report["error"]["message"]
    overridden = desk.pk(
        "check", untagged, "--pull-policy", "IfNotPresent", *configs("alice"), *ca(token_registry)
    )
    assert "pull policy: IfNotPresent" in overridden.stdout.splitlines()


def test_what_the_kubelet_does_not_pull_asks_no_registry(
    desk: Desk, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    image = f"{token_registry.host}/team-a/app:v1"
    creds = (*configs("alice"), *ca(token_registry))
    before = token_server.request_count()
    never = desk.pk("check", image, "--pull-policy", "Never", *creds)
    assert never.returncode == 1, never.describe()
    assert "ErrImageNeverPull" in never.stdout.splitlines()[-1]
    for policy in ("Never", "IfNotPresent"):
        there = desk.pk("check", image, "--pull-policy", policy, "--on-node", *creds)
        assert there.returncode == 0, there.describe()
        lines = there.stdout.splitlines()
        assert (
            "from node:   uses only the image already on the node; the registry is not asked"
            in (lines)
        )
        assert lines[-1] == "result:      can pull"
    assert token_server.request_count() == before


# --------------------------------------------------------------------------- TLS options


def test_ca_file(desk: Desk, basic_registry: BasicRegistry) -> None:
    image = basic_registry.image(MULTI_DOCKER)
    assert basic_registry.ca_file is not None
    cert = x509.load_pem_x509_certificate(basic_registry.ca_file.read_bytes())
    untrusted = desk.pk("check", image.reference, *configs("basic"), "-o", "json")
    assert untrusted.returncode == 1, untrusted.describe()
    error = untrusted.json()["error"]
    assert error["cause"] == "tls_untrusted"
    assert (error["subject"], error["issuer"]) == (
        cert.subject.rfc4514_string(),
        cert.issuer.rfc4514_string(),
    )
    assert "--ca-file" in error["message"]

    trusted = desk.pk("check", image.reference, *configs("basic"), *ca(basic_registry))
    assert trusted.returncode == 0, trusted.describe()
    assert f"digest:      {image.digest}" in trusted.stdout.splitlines()


def test_insecure_against_the_plain_registry(desk: Desk, plain_registry: PlainRegistry) -> None:
    image = plain_registry.image(APP)
    refused = desk.pk("check", image.reference, "-o", "json")
    assert refused.returncode == 1, refused.describe()
    assert refused.json()["error"]["cause"] == "tls_error"
    assert "mark it insecure" in refused.json()["error"]["message"]

    insecure = desk.pk("check", image.reference, "--insecure")
    assert insecure.returncode == 0, insecure.describe()
    lines = insecure.stdout.splitlines()
    assert lines[1:3] == [
        "credentials: none match this image; the kubelet pulls it anonymously",
        "  anonymous: works",
    ]
    assert f"digest:      {image.digest}" in lines


def test_client_certificate(desk: Desk, mtls_registry: MtlsRegistry) -> None:
    image = mtls_registry.image(MULTI)
    server_ca = ["--ca-file", str(mtls_registry.ca_file)]
    without = desk.pk("check", image.reference, *server_ca, "-o", "json")
    assert without.returncode == 1, without.describe()
    assert without.json()["error"]["cause"] == "tls_error"
    assert "wants a client certificate" in without.json()["error"]["message"]
    client = ["--cert", str(mtls_registry.client_cert_file), "--key"]
    with_cert = desk.pk(
        "check", image.reference, *server_ca, *client, str(mtls_registry.client_key_file)
    )
    assert with_cert.returncode == 0, with_cert.describe()
    assert f"digest:      {image.digest}" in with_cert.stdout.splitlines()
    key_only = desk.pk("check", image.reference, "--key", str(mtls_registry.client_key_file))
    assert "--key needs --cert" in assert_one_line_error(key_only)


# --------------------------------------------------------------------------- docker config


def test_the_docker_config_is_used_without_config(
    desk: Desk, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    image = token_registry.image(APP)
    env = isolated_env(tmp_path / "home")
    default = config_file(
        tmp_path / "home" / ".docker" / "config.json", token_registry.host, token_registry.alice
    )
    works = desk.pk("check", image.reference, *ca(token_registry), "-o", "json", env=env)
    assert works.returncode == 0, works.describe()
    [attempt] = works.json()["attempts"]
    assert (attempt["source"], attempt["username"], attempt["ok"]) == (str(default), "alice", True)

    # $DOCKER_CONFIG names the directory instead; here it holds a wrong password.
    elsewhere = config_file(
        tmp_path / "elsewhere" / "config.json",
        token_registry.host,
        Credentials(username="alice", password=WRONG_PASSWORD),
    )
    env["DOCKER_CONFIG"] = str(elsewhere.parent)
    refused = desk.pk("check", image.reference, *ca(token_registry), "-o", "json", env=env)
    assert refused.returncode == 1, refused.describe()
    [attempt] = refused.json()["attempts"]
    assert (attempt["source"], attempt["cause"]) == (str(elsewhere), "unauthorized")


def test_without_any_credentials_the_check_is_anonymous(
    desk: Desk, token_registry: TokenRegistry
) -> None:
    private = desk.pk("check", token_registry.image(APP).reference, *ca(token_registry))
    assert private.returncode == 1, private.describe()
    lines = private.stdout.splitlines()
    assert lines[1] == "credentials: none match this image; the kubelet pulls it anonymously"
    assert "requires a login" in lines[2]
    public = token_registry.image(PUBLIC)
    anonymous = desk.pk("check", public.reference, *ca(token_registry))
    assert anonymous.returncode == 0, anonymous.describe()
    assert f"digest:      {public.digest}" in anonymous.stdout.splitlines()


# --------------------------------------------------------------------------- several images


def test_several_images_at_once(
    desk: Desk, token_registry: TokenRegistry, token_server: TokenServer
) -> None:
    names = [APP, MULTI, MULTI_DOCKER, PUBLIC, APP, MULTI]
    images = [token_registry.image(n) for n in names]
    result = desk.pk(
        "check",
        *(i.reference for i in images),
        *configs("alice"),
        *ca(token_registry),
        "--jobs",
        "4",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.describe()
    reports = result.json()
    assert [(r["image"], r["digest"], r["ok"]) for r in reports] == [
        (i.reference, i.digest, True) for i in images
    ]
    # Checks of the same repository share the token the first one got.
    scopes = Counter(s for r in token_server.requests for s in r.scopes)
    assert scopes == Counter({f"repository:{i.repository}:pull": 1 for i in images})

    mixed = desk.pk(
        "check",
        token_registry.image(APP).reference,
        token_registry.image(TEAM_B).reference,
        *configs("alice"),
        *ca(token_registry),
        "-j",
        "2",
    )
    assert mixed.returncode == 1, mixed.describe()
    first, second = mixed.stdout.split("\n\n")
    assert first.splitlines()[-1] == "result:      can pull"
    assert second.splitlines()[0] == f"image:       {token_registry.image(TEAM_B).reference}"
    assert "has no access to team-b/other" in second
    assert second.splitlines()[-1].startswith("result:      cannot pull: ")


# --------------------------------------------------------------------------- token realms


def test_a_login_goes_to_a_token_server_on_another_host_only_when_trusted(
    desk: Desk, tmp_path: Path
) -> None:
    password = "a-password-for-the-realm-77"  # must never reach the other host
    with ChallengingRegistry(tmp_path) as registry, Recorder("127.0.0.2") as elsewhere:
        registry.realm = f"https://{elsewhere.address}/token"
        config_file(
            tmp_path / "robot.json", registry.host, Credentials(username="robot", password=password)
        )
        args = ["check", f"{registry.host}/app:v1", "--config", str(tmp_path / "robot.json")]
        args += ["--ca-file", str(registry.ca_file), "-o", "json"]

        refused = desk.pk(*args)
        assert refused.returncode == 1, refused.describe()
        error = json.loads(refused.stdout)["error"]
        assert error["cause"] == "untrusted_realm"
        assert "--token-host" in error["message"] and elsewhere.address in error["message"]
        assert elsewhere.received == []

        trusted = desk.pk(*args, "--token-host", elsewhere.address)
        assert json.loads(trusted.stdout)["error"]["cause"] != "untrusted_realm"
        assert len(elsewhere.received) == 1  # reached; its certificate is not trusted here
        assert password.encode() not in elsewhere.received[0]
