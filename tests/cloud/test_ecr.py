"""ECR logins from an AWS identity through boto3, against AWS's APIs on loopback (moto,
corrected where it differs from AWS: tests/cloud/aws.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from pullkeeper.cloud import ecr
from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.core.cloud import ExchangeError, aws_identity
from tests.cloud import aws
from tests.cloud.aws import Aws

SERVER = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ADMIN_KEY = ("AKIAADMIN00000000000", "admin-secret")
ROLE = "arn:aws:iam::123456789012:role/puller"


@pytest.fixture
def cloud() -> Iterator[Aws]:
    with aws.serve() as stand_in:
        yield stand_in


def _iam(cloud: Aws) -> object:
    session = boto3.session.Session(*ADMIN_KEY, region_name="us-east-1")
    return session.client("iam", endpoint_url=cloud.url)


def _user(cloud: Aws, name: str, actions: list[str]) -> tuple[str, str]:
    """An IAM user allowed `actions` and nothing else, and its access key."""
    iam = _iam(cloud)
    iam.create_user(UserName=name)  # type: ignore[attr-defined]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))  # type: ignore[attr-defined]
    key = iam.create_access_key(UserName=name)["AccessKey"]  # type: ignore[attr-defined]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_a_login_is_made_from_an_access_key(cloud: Aws) -> None:
    key_id, secret = _user(cloud, "puller", ["ecr:GetAuthorizationToken"])
    identity = aws_identity(SERVER, key_id, secret)
    before = datetime.now(UTC)
    with cloud.enforcing_iam():
        first = ecr.token(identity, secret, Endpoints(aws=cloud.url))
        second = ecr.token(identity, secret, Endpoints(aws=cloud.url))
    assert first.username == "AWS" and first.password == cloud.issued[0]
    assert second.password == cloud.issued[1] != first.password
    assert before <= first.issued_at <= datetime.now(UTC)
    assert first.lifetime == pytest.approx(timedelta(hours=12), abs=timedelta(seconds=5))
    assert secret not in repr(first)


def test_a_role_is_assumed_first_with_its_external_id(cloud: Aws) -> None:
    identity = aws_identity(SERVER, ADMIN_KEY[0], ADMIN_KEY[1], ROLE, "pk-ext-7")
    found = ecr.token(identity, ADMIN_KEY[1], Endpoints(aws=cloud.url))
    assert found.password == cloud.issued[-1]


def test_a_missing_permission_is_named(cloud: Aws) -> None:
    key_id, secret = _user(cloud, "reader", ["s3:ListBucket"])
    with cloud.enforcing_iam(), pytest.raises(ExchangeError) as e:
        ecr.token(aws_identity(SERVER, key_id, secret), secret, Endpoints(aws=cloud.url))
    assert e.value.cause == "denied" and "ecr:GetAuthorizationToken" in e.value.message
    with cloud.enforcing_iam(), pytest.raises(ExchangeError) as e:
        ecr.token(aws_identity(SERVER, key_id, secret, ROLE), secret, Endpoints(aws=cloud.url))
    assert (
        e.value.cause == "denied" and ROLE in e.value.message and "trust policy" in e.value.message
    )
    assert secret not in str(e.value)


def test_wrong_keys_are_told_apart(cloud: Aws) -> None:
    key_id, secret = _user(cloud, "puller", ["ecr:GetAuthorizationToken"])
    unknown = "AKIAUNKNOWN000000000"
    with cloud.enforcing_iam(), pytest.raises(ExchangeError) as e:
        ecr.token(aws_identity(SERVER, unknown, secret), secret, Endpoints(aws=cloud.url))
    assert e.value.cause == "invalid" and unknown in e.value.message
    wrong = "not-the-secret-of-this-key"
    with cloud.enforcing_iam(), pytest.raises(ExchangeError) as e:
        ecr.token(aws_identity(SERVER, key_id, wrong), wrong, Endpoints(aws=cloud.url))
    assert e.value.cause == "invalid" and "does not match" in e.value.message
    assert wrong not in e.value.message and secret not in e.value.message


def test_a_token_that_has_expired_already_says_the_clock_is_wrong(cloud: Aws) -> None:
    cloud.lifetime = timedelta(hours=-1)  # as if this server's clock were hours ahead
    with pytest.raises(ExchangeError) as e:
        ecr.token(aws_identity(SERVER, *ADMIN_KEY), ADMIN_KEY[1], Endpoints(aws=cloud.url))
    assert e.value.cause == "clock" and "NTP" in e.value.message


def test_no_answer_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ExchangeError) as e:
        ecr.token(
            aws_identity(SERVER, *ADMIN_KEY),
            ADMIN_KEY[1],
            Endpoints(aws=f"http://127.0.0.1:{port}"),
        )
    assert e.value.cause == "unreachable" and "eu-west-1" in e.value.message


def test_without_any_aws_identity_the_default_chain_says_so(
    cloud: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ExchangeError) as e:
        ecr.token(aws_identity(SERVER), "", Endpoints(aws=cloud.url))
    assert e.value.cause == "invalid" and "no AWS credentials" in e.value.message


def test_the_default_chain_reads_this_servers_environment(
    cloud: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, secret = _user(cloud, "node", ["ecr:GetAuthorizationToken"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with cloud.enforcing_iam():
        found = ecr.token(aws_identity(SERVER), "", Endpoints(aws=cloud.url))
    assert found.password == cloud.issued[-1]


def test_the_stand_in_answers_as_ecr_does(cloud: Aws) -> None:
    """Where moto differs from ECR the stand-in follows ECR: JSON errors with ECR's names,
    a new token each call that expires 12 hours on."""
    key_id, secret = _user(cloud, "reader", ["s3:ListBucket"])
    client = boto3.session.Session(key_id, secret, region_name="eu-west-1").client(
        "ecr", endpoint_url=cloud.url
    )
    with cloud.enforcing_iam(), pytest.raises(ClientError) as e:
        client.get_authorization_token()
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    admin = boto3.session.Session(*ADMIN_KEY, region_name="eu-west-1").client(
        "ecr", endpoint_url=cloud.url
    )
    first, second = (admin.get_authorization_token()["authorizationData"][0] for _ in range(2))
    assert first["authorizationToken"] != second["authorizationToken"]
    assert first["expiresAt"] - datetime.now(UTC) > timedelta(hours=11)
