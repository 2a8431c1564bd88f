"""The kubelet credential provider's cloud identity file (services.provider_identity) and how
long an answer holding a token is cached (core.credential_provider.cache_duration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pullkeeper.core.cloud import AwsIdentity, AzureIdentity, IdentityError
from pullkeeper.core.credential_provider import cache_duration
from pullkeeper.services import provider_identity
from pullkeeper.services.provider_identity import Identity, parse

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
GCP_KEY = json.dumps(
    {
        "type": "service_account",
        "client_email": "puller@p.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
        "private_key_id": "abc",
    }
)
SECRETS = {
    "/etc/pk/aws": "aws-secret-Zx91",
    "/etc/pk/azure": "azure-secret-Qw72",
    "/etc/pk/gcp.json": GCP_KEY,
    "/etc/pk/empty": "",
}


def read_secret(path: str) -> str:
    if path not in SECRETS:
        raise FileNotFoundError(2, "No such file or directory")
    return SECRETS[path]


def parsed(text: str) -> Identity:
    return parse(text, read_secret)


def refused(text: str) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        parsed(text)
    return caught.value


def test_an_ecr_identity_with_an_access_key_and_a_role() -> None:
    found = parsed(
        f"provider: ecr\nserver: {ECR}\naccess_key_id: {KEY_ID}\n"
        "secret_access_key_file: /etc/pk/aws\n"
        "role_arn: arn:aws:iam::123456789012:role/puller\nexternal_id: ext-1\n"
    )
    assert found == Identity(
        "ecr",
        ECR,
        aws=AwsIdentity(
            "123456789012", "eu-west-1", KEY_ID, "arn:aws:iam::123456789012:role/puller", "ext-1"
        ),
        secret="aws-secret-Zx91",
    )
    assert "aws-secret-Zx91" not in repr(found)


def test_json_is_read_as_well_and_no_secret_is_the_nodes_own_identity() -> None:
    found = parsed(json.dumps({"provider": "ecr", "server": ECR}))
    assert found.aws is not None and found.aws.default_chain and found.secret == ""
    gcr = parsed('{"provider": "gcr", "server": "europe-docker.pkg.dev"}')
    assert (gcr.server, gcr.secret) == ("europe-docker.pkg.dev", "")
    workload = parsed("provider: acr\nserver: myregistry.azurecr.io\nauth: workload\n")
    assert workload.azure == AzureIdentity("workload")


def test_a_gcr_key_file_and_an_acr_service_principal() -> None:
    gcr = parsed("provider: gcr\nserver: eu.gcr.io\nkey_file: /etc/pk/gcp.json\n")
    assert gcr.secret == GCP_KEY
    acr = parsed(
        f"provider: acr\nserver: myregistry.azurecr.io\nauth: secret\ntenant_id: {TENANT}\n"
        f"client_id: {CLIENT}\nsecret_file: /etc/pk/azure\n"
    )
    assert acr.azure == AzureIdentity("secret", TENANT, CLIENT)
    assert acr.secret == "azure-secret-Qw72"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("[1, 2]", "file", "the identity file is a mapping"),
        ("a: [", "file", "not JSON, nor YAML (line"),
        ("provider: quay\n", "provider", "the provider is one of: ecr, gcr, acr"),
        ("provider: ecr\nserver: quay.io\n", "server", "is not ACCOUNT.dkr.ecr.REGION"),
        ("provider: gcr\nserver: quay.io\n", "server", "is not gcr.io, a regional host"),
        ("provider: acr\nserver: x.azurecr.io\nauth: default\n", "server", "NAME.azurecr.io"),
        (
            f"provider: ecr\nserver: {ECR}\nsecret_access_key: aws-secret-Zx91\n",
            "secret_access_key",
            "name that file in secret_access_key_file",
        ),
        (
            f"provider: ecr\nserver: {ECR}\nkey_file: /etc/pk/gcp.json\n",
            "key_file",
            "ecr identities have no key_file; their fields: provider, server, access_key_id",
        ),
        (f"provider: ecr\nserver: {ECR}\nrole_arn: 12\n", "role_arn", "every field's value"),
        (
            f"provider: ecr\nserver: {ECR}\naccess_key_id: {KEY_ID}\n",
            "secret_access_key_file",
            "the access key's secret is required",
        ),
        (
            f"provider: ecr\nserver: {ECR}\nsecret_access_key_file: /etc/pk/aws\n",
            "access_key_id",
            "a secret access key needs its access key id",
        ),
        (
            f"provider: ecr\nserver: {ECR}\naccess_key_id: {KEY_ID}\n"
            "secret_access_key_file: /etc/pk/absent\n",
            "secret_access_key_file",
            "/etc/pk/absent: cannot read: No such file or directory",
        ),
        (
            f"provider: ecr\nserver: {ECR}\naccess_key_id: {KEY_ID}\n"
            "secret_access_key_file: /etc/pk/empty\n",
            "secret_access_key_file",
            "/etc/pk/empty is empty",
        ),
        (
            "provider: gcr\nserver: gcr.io\nkey_file: /etc/pk/aws\n",
            "key_file",
            "the key is not JSON",
        ),
        ("provider: acr\nserver: myregistry.azurecr.io\n", "auth", "the Azure login is one of"),
        (
            f"provider: acr\nserver: myregistry.azurecr.io\nauth: secret\ntenant_id: {TENANT}\n"
            f"client_id: {CLIENT}\n",
            "secret_file",
            "the service principal's client secret is required",
        ),
        (
            "provider: acr\nserver: myregistry.azurecr.io\nauth: default\n"
            "secret_file: /etc/pk/azure\n",
            "secret_file",
            "default login takes no secret",
        ),
    ],
)
def test_what_is_wrong_names_the_field(text: str, field: str, message: str) -> None:
    error = refused(text)
    assert error.field == field
    assert message in error.message
    for secret in ("aws-secret-Zx91", "azure-secret-Qw72"):
        assert secret not in error.message


def test_load_reads_the_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("aws-secret-Zx91\n")
    path = tmp_path / "identity.yaml"
    path.write_text(
        f"provider: ecr\nserver: {ECR}\naccess_key_id: {KEY_ID}\nsecret_access_key_file: {secret}\n"
    )
    assert provider_identity.load(str(path)).secret == "aws-secret-Zx91"
    with pytest.raises(OSError, match="No such file"):
        provider_identity.load(str(tmp_path / "absent.yaml"))


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("left", "most", "expected"),
    [
        (timedelta(hours=12), None, 6 * 3600 * SECOND),  # ECR's: six hours
        (timedelta(hours=1), None, 1800 * SECOND),  # Google's: half an hour
        (timedelta(hours=1), 300 * SECOND, 300 * SECOND),  # at most what the caller says
        (timedelta(seconds=3), None, SECOND),  # whole seconds, rounded down
        (timedelta(seconds=1), None, 0),
        (timedelta(0), None, 0),  # expired: not cached
        (-timedelta(hours=1), None, 0),
    ],
)
def test_an_answer_is_cached_for_half_its_tokens_remaining_life(
    left: timedelta, most: int | None, expected: int
) -> None:
    assert cache_duration(NOW, NOW + left, most) == expected
