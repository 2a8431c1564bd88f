"""Cloud identities as a user gives them, and when a token is made again."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullkeeper.core import cloud
from pullkeeper.core.cloud import IdentityError, Token

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - jitter of refresh times, not a secret


def test_an_ecr_identity_takes_its_registry_and_region_from_the_address() -> None:
    found = cloud.aws_identity(ECR, "AKIAABCDEFGHIJKLMNOP", "s3cr3t")
    assert (found.registry_id, found.region, found.default_chain) == (
        "123456789012",
        "eu-west-1",
        False,
    )
    fips = cloud.aws_identity("210987654321.dkr.ecr-fips.us-gov-west-1.amazonaws.com")
    assert (fips.registry_id, fips.region, fips.default_chain) == (
        "210987654321",
        "us-gov-west-1",
        True,
    )
    role = "arn:aws:iam::123456789012:role/ci/puller"
    assumed = cloud.aws_identity(ECR, role_arn=role, external_id="pk-ext-1")
    assert (assumed.role_arn, assumed.external_id) == (role, "pk-ext-1")


@pytest.mark.parametrize(
    ("server", "kwargs", "field", "says"),
    [
        ("quay.io", {}, "server", "ACCOUNT.dkr.ecr.REGION.amazonaws.com"),
        (
            ECR,
            {"access_key_id": "akiaabcdefghijklmnop", "secret_access_key": "s"},
            "access_key_id",
            "AKIA",
        ),
        (ECR, {"access_key_id": "AKIAABCDEFGHIJKLMNOP"}, "secret_access_key", "required"),
        (ECR, {"secret_access_key": "s"}, "access_key_id", "needs its access key id"),
        (ECR, {"role_arn": "arn:aws:iam::1234:role/x"}, "role_arn", "12-digit"),
        (ECR, {"external_id": "abc"}, "external_id", "with the role"),
        (
            ECR,
            {"role_arn": "arn:aws:iam::123456789012:role/x", "external_id": "a b"},
            "external_id",
            "letters",
        ),
    ],
)
def test_a_wrong_ecr_identity_names_its_field(
    server: str, kwargs: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(IdentityError) as e:
        cloud.aws_identity(server, **kwargs)
    assert e.value.field == field and says in e.value.message
    assert "s3cr3t" not in e.value.message


def _key(**fields: object) -> str:
    key = {
        "type": "service_account",
        "project_id": "acme",
        "private_key_id": "k1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
        "client_email": "puller@acme.iam.gserviceaccount.com",
    }
    key.update(fields)
    return json.dumps({k: v for k, v in key.items() if v is not None})


def test_a_service_account_key_says_who_it_is_and_where_its_tokens_come_from() -> None:
    found = cloud.gcp_key(_key())
    assert found == cloud.GcpKey(
        "puller@acme.iam.gserviceaccount.com", "k1", "acme", cloud.GOOGLE_TOKEN_URI
    )
    assert cloud.gcp_key(_key(token_uri="https://t.example/token")).token_uri == (
        "https://t.example/token"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ("[1]", "not JSON"),
        (_key(type="authorized_user"), "'authorized_user' file, not a service-account key"),
        (_key(type=None), "not a key file"),
        (_key(private_key=None), "no private_key"),
        (_key(client_email=""), "no client_email"),
        (_key(token_uri=5), "token_uri"),
    ],
)
def test_what_is_not_a_service_account_key_is_said(text: str, says: str) -> None:
    with pytest.raises(IdentityError) as e:
        cloud.gcp_key(text)
    assert e.value.field == "key" and says in e.value.message
    assert "BEGIN PRIVATE KEY" not in e.value.message


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0f6f5ab0-3f7a-4b84-9c6e-3e1b8f4f7c11"


def test_azure_identities() -> None:
    assert cloud.azure_identity("secret", TENANT, CLIENT, "pw") == cloud.AzureIdentity(
        "secret", TENANT, CLIENT
    )
    pem = "-----BEGIN CERTIFICATE-----\n...\n-----BEGIN PRIVATE KEY-----\n...\n"
    assert cloud.azure_identity("certificate", "contoso.onmicrosoft.com", CLIENT, pem).auth == (
        "certificate"
    )
    assert cloud.azure_identity("workload") == cloud.AzureIdentity("workload")
    for auth, tenant, client, secret, field in [
        ("password", TENANT, CLIENT, "pw", "auth"),
        ("secret", "not a tenant", CLIENT, "pw", "tenant_id"),
        ("secret", TENANT, "app", "pw", "client_id"),
        ("secret", TENANT, CLIENT, "", "secret"),
        ("certificate", TENANT, CLIENT, "-----BEGIN CERTIFICATE-----", "secret"),
        ("default", "", "", "pw", "secret"),
    ]:
        with pytest.raises(IdentityError) as e:
            cloud.azure_identity(auth, tenant, client, secret)
        assert e.value.field == field, (auth, tenant, client)


lifetimes = st.timedeltas(min_value=timedelta(minutes=5), max_value=timedelta(days=2))


@given(lifetimes, st.integers(0, 2**32))
def test_a_token_is_made_again_at_or_before_half_its_life(life: timedelta, seed: int) -> None:
    token = Token("AWS", "t", T0, T0 + life)
    at = cloud.refresh_at(token, rng(seed))
    assert T0 + life * 0.4 <= at <= T0 + life / 2


@given(lifetimes, st.timedeltas(timedelta(0), timedelta(hours=3)), st.integers(0, 2**32))
def test_a_lead_comes_off_the_time_but_never_more_than_a_tenth_of_the_life(
    life: timedelta, lead: timedelta, seed: int
) -> None:
    token = Token("AWS", "t", T0, T0 + life)
    without = cloud.refresh_at(token, rng(seed))
    at = cloud.refresh_at(token, rng(seed), lead)
    assert at == without - min(lead, life / 10)
    assert T0 + life * 0.3 <= at <= T0 + life / 2 - min(lead, life / 10)


def test_refreshes_of_tokens_made_together_are_spread() -> None:
    spread = rng(7)
    token = Token("AWS", "t", T0, T0 + timedelta(hours=12))
    times = {cloud.refresh_at(token, spread) for _ in range(100)}
    assert max(times) - min(times) > timedelta(minutes=30)


@given(st.integers(1, 40), st.integers(0, 2**32))
def test_failures_back_off_up_to_a_ceiling(failures: int, seed: int) -> None:
    wait = cloud.retry_at(T0, failures, None, rng(seed)) - T0
    expected = min(cloud.RETRY_FIRST * 2 ** (failures - 1), cloud.RETRY_MOST)
    assert expected * 0.8 <= wait <= expected * 1.2


def test_a_retry_comes_before_the_token_expires() -> None:
    expires = T0 + timedelta(minutes=4)
    at = cloud.retry_at(T0, 10, expires, rng(1))
    assert at == T0 + timedelta(minutes=2)
    # An expired token is retried on the backoff alone.
    later = cloud.retry_at(expires, 1, expires, rng(1))
    assert later > expires


def test_the_alert_state_comes_with_a_failure_and_a_quarter_of_life_left() -> None:
    issued, expires = T0, T0 + timedelta(hours=12)
    at_two_thirds = T0 + timedelta(hours=8)
    at_nine_tenths = T0 + timedelta(hours=10, minutes=48)
    assert cloud.token_state(at_two_thirds, issued, expires, failing=True).word == "valid"
    assert cloud.token_state(at_nine_tenths, issued, expires, failing=False).word == "valid"
    assert cloud.token_state(at_nine_tenths, issued, expires, failing=True).word == "alert"
    assert cloud.token_state(expires, issued, expires, failing=False).word == "expired"


def test_a_token_never_shows_itself() -> None:
    token = Token("AWS", "eyJwYXlsb2FkIjoic2VjcmV0In0", T0, T0 + timedelta(hours=12))
    assert "eyJ" not in repr(token) and "eyJ" not in str(token)
