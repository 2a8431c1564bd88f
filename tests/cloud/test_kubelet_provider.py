"""`pullkeeper kubelet-credential-provider --identity`, run by the kubelet's own credential
provider code (kubelet-keyring), exchanging the identity at the clouds' stand-ins: ECR (moto),
Google's token endpoint, Microsoft Entra and an ACR's /oauth2/exchange."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pullkeeper.core.cloud import ACR_USERNAME, ECR_USERNAME, GCR_USERNAME
from pullkeeper.core.go import duration as goduration
from tests.cloud import aws
from tests.cloud.aws import Aws
from tests.cloud.azure import REFRESH_LIFE, Entra, Registry
from tests.cloud.google_token import EXPIRES_IN, GoogleTokenEndpoint
from tests.integration.conftest import (
    Kubelet,
    Result,
    assert_one_line_error,
    kubelet_request,
    make_kubelet,
    pk,
)
from tests.registry import pki

pytestmark = pytest.mark.integration

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "aws-secret-Zx91-never-shown"
ACR = "pkregistry.azurecr.io"
AZURE_SECRET = "Qx8~pk-test-secret-value"


@pytest.fixture
def kubelet(tmp_path: Path) -> Kubelet:
    return make_kubelet(tmp_path)


@pytest.fixture
def cloud() -> Iterator[Aws]:
    with aws.serve() as stand_in:
        yield stand_in


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def ecr_identity(tmp_path: Path) -> str:
    secret = write(tmp_path / "aws-secret", AWS_SECRET + "\n")
    return write(
        tmp_path / "ecr.yaml",
        f"provider: ecr\nserver: {ECR}\naccess_key_id: {KEY_ID}\n"
        f"secret_access_key_file: {secret}\n",
    )


def cache_seconds(out: str) -> float:
    return goduration.parse(json.loads(out)["cacheDuration"]) / 1e9


def test_the_kubelet_pulls_from_ecr_with_a_token_the_identity_makes(
    cloud: Aws, kubelet: Kubelet, tmp_path: Path
) -> None:
    identity = ecr_identity(tmp_path)
    kubelet.install(
        "--identity", identity, "--cloud-aws-endpoint", cloud.url, match_images=[ECR, "quay.io"]
    )
    image = f"{ECR}/team/app"
    found, result = kubelet.lookup(image, f"{ECR}/team/other", "quay.io/x")
    [password] = cloud.issued  # one exchange: the answer is cached for the registry
    assert found == {
        image: [(ECR_USERNAME, password)],
        f"{ECR}/team/other": [(ECR_USERNAME, password)],
        "quay.io/x": [],  # not the identity's registry: nothing exchanged
    }
    assert kubelet.runs == 2
    assert AWS_SECRET not in result.stdout + result.stderr

    # The answer itself: keyed by the registry, cached for half the token's 12 hours.
    answered = pk(
        "kubelet-credential-provider",
        *("--identity", identity, "--cloud-aws-endpoint", cloud.url),
        stdin=kubelet_request(image),
    )
    assert answered.returncode == 0 and answered.err == b"", answered.describe()
    doc = json.loads(answered.stdout)
    assert doc["auth"] == {ECR: {"username": "AWS", "password": cloud.issued[-1]}}
    assert 6 * 3600 - 60 <= cache_seconds(answered.stdout) <= 6 * 3600
    explicit = pk(
        "kubelet-credential-provider",
        *("--identity", identity, "--cloud-aws-endpoint", cloud.url, "--cache-duration", "10m"),
        stdin=kubelet_request(image),
    )
    assert json.loads(explicit.stdout)["cacheDuration"] == "10m0s"


def failed(result: Result, *secrets: str) -> str:
    line = assert_one_line_error(result, 1)
    assert result.out == b"", result.describe()
    for secret in secrets:
        assert secret not in result.stderr
    return line


def test_an_exchange_that_fails_is_one_line_naming_the_cause(
    cloud: Aws, kubelet: Kubelet, tmp_path: Path
) -> None:
    identity = ecr_identity(tmp_path)
    with cloud.enforcing_iam():  # AWS knows no such key
        line = failed(
            pk(
                "kubelet-credential-provider",
                *("--identity", identity, "--cloud-aws-endpoint", cloud.url),
                stdin=kubelet_request(f"{ECR}/app"),
            ),
            AWS_SECRET,
        )
        assert line == (
            f"error: {identity}: the ecr identity got no token for {ECR} (invalid): AWS does "
            f"not know the access key id {KEY_ID}: check it, or make a new key"
        )
        kubelet.install(
            "--identity", identity, "--cloud-aws-endpoint", cloud.url, match_images=[ECR]
        )
        found, result = kubelet.lookup(f"{ECR}/app")
    assert found == {f"{ECR}/app": []}
    assert "AWS does not know the access key id" in result.stderr
    assert AWS_SECRET not in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("provider: ecr\nserver: quay.io\n", "server: 'quay.io' is not ACCOUNT.dkr.ecr.REGION"),
        (
            f"provider: ecr\nserver: {ECR}\nsecret_access_key: {AWS_SECRET}\n",
            "secret_access_key: a secret is not written in the identity file",
        ),
    ],
)
def test_an_identity_file_that_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    identity = write(tmp_path / "identity.yaml", text)
    line = failed(
        pk("kubelet-credential-provider", "--identity", identity, stdin=kubelet_request("x/y")),
        AWS_SECRET,
    )
    assert line.startswith(f"error: {identity}: {message}"), line
    assert line.endswith(
        "fix the file, or the --identity in this provider's args in the kubelet's "
        "CredentialProviderConfig"
    )


def test_the_kubelet_pulls_from_gcr_with_a_service_account_keys_token(
    google: GoogleTokenEndpoint,
    stand_in_cert: pki.Issued,
    kubelet: Kubelet,
    tmp_path: Path,
) -> None:
    key = google.service_account_key()
    key_file = write(tmp_path / "key.json", key.json)
    identity = write(
        tmp_path / "gcr.json",
        json.dumps({"provider": "gcr", "server": "europe-docker.pkg.dev", "key_file": key_file}),
    )
    kubelet.install(
        *("--identity", identity, "--cloud-google-token-uri", google.token_uri),
        *("--ca-file", str(stand_in_cert.cert_file)),
        match_images=["*-docker.pkg.dev", "gcr.io"],
    )
    found, result = kubelet.lookup("europe-docker.pkg.dev/p/repo/app", "gcr.io/p/app")
    [token] = google.issued
    assert found == {
        "europe-docker.pkg.dev/p/repo/app": [(GCR_USERNAME, token)],
        "gcr.io/p/app": [],
    }
    assert key.private_key not in result.stdout + result.stderr

    answered = pk(
        "kubelet-credential-provider",
        *("--identity", identity, "--cloud-google-token-uri", google.token_uri),
        *("--ca-file", str(stand_in_cert.cert_file)),
        stdin=kubelet_request("europe-docker.pkg.dev/p/repo/app"),
    )
    assert answered.returncode == 0, answered.describe()
    assert EXPIRES_IN / 2 - 60 <= cache_seconds(answered.stdout) <= EXPIRES_IN / 2
    # Without the stand-in among the token URIs, the key is sent nowhere.
    refused = failed(
        pk(
            "kubelet-credential-provider",
            *("--identity", identity, "--ca-file", str(stand_in_cert.cert_file)),
            stdin=kubelet_request("europe-docker.pkg.dev/p/repo/app"),
        ),
        key.private_key,
    )
    assert "(invalid): the key names the token endpoint" in refused
    assert len(google.issued) == 2


def test_the_kubelet_pulls_from_acr_with_a_refresh_token(
    entra: Entra,
    acr_registry: Registry,
    stand_in_cert: pki.Issued,
    kubelet: Kubelet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    tenant = entra.tenant()
    app = entra.app(tenant, secret=AZURE_SECRET)
    secret_file = write(tmp_path / "azure-secret", AZURE_SECRET + "\n")
    identity = write(
        tmp_path / "acr.yaml",
        f"provider: acr\nserver: {ACR}\nauth: secret\ntenant_id: {tenant}\n"
        f"client_id: {app.client_id}\nsecret_file: {secret_file}\n",
    )
    kubelet.install(
        *("--identity", identity, "--cloud-azure-authority", entra.url),
        *("--acr-exchange-host", acr_registry.host, "--ca-file", str(stand_in_cert.cert_file)),
        match_images=["*.azurecr.io"],
    )
    found, result = kubelet.lookup(f"{ACR}/team/app")
    [refresh_token] = acr_registry.refresh_tokens
    assert found == {f"{ACR}/team/app": [(ACR_USERNAME, refresh_token)]}
    assert AZURE_SECRET not in result.stdout + result.stderr
    assert acr_registry.received[-1].form["tenant"] == tenant
    assert entra.received[-1].form["client_secret"] == AZURE_SECRET

    answered = pk(
        "kubelet-credential-provider",
        *("--identity", identity, "--cloud-azure-authority", entra.url),
        *("--acr-exchange-host", acr_registry.host, "--ca-file", str(stand_in_cert.cert_file)),
        stdin=kubelet_request(f"{ACR}/team/app"),
    )
    assert answered.returncode == 0, answered.describe()
    doc = json.loads(answered.stdout)
    assert list(doc["auth"]) == [ACR]
    assert REFRESH_LIFE / 2 - 60 <= cache_seconds(answered.stdout) <= REFRESH_LIFE / 2
