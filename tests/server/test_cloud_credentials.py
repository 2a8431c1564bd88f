"""Credentials holding a cloud identity, through the API: created only once a first token
is made, shown without their secret, edited whole, and refreshed by the refresher (time
moved by its clock, no sleeps). AWS is moto on loopback (tests/cloud/aws.py); Google a
token endpoint of the tests' own (tests/cloud/google_token.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Set
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from pullkeeper.core.cloud import ExchangeError, Token
from pullkeeper.services import credentials
from pullkeeper.services.cloud_tokens import LEAD
from pullkeeper.services.server import Server
from pullkeeper.services.token_refresh import Refresher
from pullkeeper.settings import Settings
from pullkeeper.store.changes import Change
from pullkeeper.store.models import utcnow
from tests.cloud import aws
from tests.cloud.aws import Aws
from tests.cloud.conftest import google, stand_in_cert, stand_in_tls  # noqa: F401
from tests.cloud.google_token import GoogleTokenEndpoint
from tests.registry import pki
from tests.server.conftest import Env, assert_error

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ADMIN_KEY = ("AKIAADMIN00000000000", "admin-secret-value-1")


@pytest.fixture
def cloud(env: Env) -> Iterator[Aws]:
    """AWS on loopback, where the env's server sends its ECR exchanges."""
    with aws.serve() as stand_in:
        env.server.settings.cloud_aws_endpoint = stand_in.url
        yield stand_in


def puller(cloud: Aws, name: str = "puller", actions: tuple[str, ...] = ()) -> tuple[str, str]:
    """An IAM user allowed ecr:GetAuthorizationToken (or `actions`), and its access key."""
    iam = boto3.session.Session(*ADMIN_KEY, region_name="us-east-1").client(
        "iam", endpoint_url=cloud.url
    )
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(actions or ("ecr:GetAuthorizationToken",)),
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def ecr_body(env: Env, key: tuple[str, str], name: str = "ecr", **kw: Any) -> dict[str, Any]:
    env.cluster()
    return {
        "name": name,
        "cluster": "c1",
        "scope": "cluster",
        "provider": "ecr",
        "server": ECR,
        "identity": {"kind": "aws", "access_key_id": key[0], "secret": key[1]},
        **kw,
    }


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def test_an_ecr_identity_makes_the_credentials_login_and_is_never_shown(
    env: Env, cloud: Aws
) -> None:
    key = puller(cloud)
    before = utcnow()
    with cloud.enforcing_iam():
        made = env.admin.ok("POST", "credentials", json=ecr_body(env, key))
    assert made["username"] == "AWS"
    identity = made["identity"]
    assert {k: v for k, v in identity.items() if k != "token"} == {
        "kind": "aws",
        "access_key_id": key[0],
    }
    token = identity["token"]
    assert token["state"] == "valid" and token["failures"] == 0 and token["last_error"] is None
    issued, expires, refresh = (at(token[k]) for k in ("issued_at", "expires_at", "refresh_at"))
    assert before <= issued <= utcnow()
    assert expires - issued == pytest.approx(timedelta(hours=12), abs=timedelta(seconds=5))
    # At or before half the token's life less a minute (the refresher's lead), not at once.
    life = expires - issued
    assert issued + life * 0.4 - LEAD <= refresh <= issued + life / 2 - LEAD
    # The delivered login is the token ECR issued.
    assert env.secret(made["id"]) == {ECR: ("AWS", cloud.issued[-1], "")}
    # The secret access key is in no answer, no audit record (Env's guard checks every
    # response for it; the audit is read through the API).
    created = env.audit(action="credential.create")[0]
    assert key[1] not in json.dumps(created) and cloud.issued[-1] not in json.dumps(created)
    shown = env.admin.ok("GET", f"credentials/{made['id']}")
    assert shown["identity"] == identity


def test_a_create_the_cloud_refuses_is_not_stored_and_says_what_to_do(env: Env, cloud: Aws) -> None:
    key = puller(cloud, "reader", ("s3:ListBucket",))
    with cloud.enforcing_iam():
        refused = env.admin.post("credentials", json=ecr_body(env, key))
    error = assert_error(refused, 422, field="identity")
    assert "(denied)" in error["message"] and "ecr:GetAuthorizationToken" in error["message"]
    assert env.admin.ok("GET", "credentials")["items"] == []


@pytest.mark.parametrize(
    ("identity", "field", "words"),
    [
        ({"kind": "gcp", "secret": "{}"}, "identity.kind", "ecr takes aws"),
        (
            {"kind": "aws", "access_key_id": "AKIA123", "secret": "x" * 20},
            "identity.access_key_id",
            "20 characters",
        ),
        ({"kind": "aws", "access_key_id": ADMIN_KEY[0]}, "identity.secret", "secret is required"),
        ({"kind": "aws", "tenant_id": "t"}, "identity.tenant_id", "takes access_key_id"),
        ({"kind": "aws", "role_arn": "arn:aws:iam::1:role/x"}, "identity.role_arn", "12-digit"),
    ],
)
def test_an_identity_that_cannot_be_used_is_refused_naming_its_field(
    env: Env, cloud: Aws, identity: dict[str, str], field: str, words: str
) -> None:
    body = ecr_body(env, ADMIN_KEY) | {"identity": identity}
    assert_error(env.admin.post("credentials", json=body), 422, field=field, message=words)
    assert cloud.issued == []  # nothing was sent to AWS


def test_a_cloud_credential_is_edited_with_a_whole_identity_not_a_password(
    env: Env, cloud: Aws
) -> None:
    made = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    path = f"credentials/{made['id']}"
    assert_error(
        env.admin.patch(path, json={"password": "pw-static-Zq81xv"}), 422, field="password"
    )
    assert_error(env.admin.patch(path, json={"username": "bob"}), 422, field="username")
    other = puller(cloud, "other")
    edited = env.admin.ok(
        "PATCH",
        path,
        json={"identity": {"kind": "aws", "access_key_id": other[0], "secret": other[1]}},
    )
    assert edited["identity"]["access_key_id"] == other[0]
    assert env.secret(made["id"]) == {ECR: ("AWS", cloud.issued[-1], "")}
    updated = env.audit(action="credential.update")[0]
    assert updated["after"]["secret"] == "changed" and other[1] not in json.dumps(updated)
    assert env.admin.ok("PATCH", path, json={"description": "prod"})["description"] == "prod"


def test_a_gcr_key_makes_oauth2_access_tokens(
    env: Env,
    google: GoogleTokenEndpoint,  # noqa: F811
    stand_in_cert: pki.Issued,  # noqa: F811
) -> None:
    settings = env.server.settings
    settings.cloud_google_token_uris = [google.token_uri]
    settings.cloud_ca_file = stand_in_cert.cert_file
    key = google.service_account_key()
    env.cluster()
    made = env.admin.ok(
        "POST",
        "credentials",
        json={
            "name": "gcr",
            "cluster": "c1",
            "scope": "cluster",
            "provider": "gcr",
            "server": "europe-docker.pkg.dev",
            "identity": {"kind": "gcp", "secret": key.json},
        },
    )
    assert made["username"] == "oauth2accesstoken"
    assert made["identity"]["client_email"] == key.info["client_email"]
    assert "private_key" not in made["identity"]
    assert env.secret(made["id"]) == {
        "europe-docker.pkg.dev": ("oauth2accesstoken", google.issued[-1], "")
    }


# --------------------------------------------------------------------------- the refresher


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def kinds_changed(env: Env) -> list[set[str]]:
    """The kinds of each committed change from now on."""
    seen: list[set[str]] = []

    def heard(changed: Set[Change]) -> None:
        seen.append({c.kind for c in changed})

    env.server.on_change.append(heard)
    return seen


def test_the_refresher_makes_a_new_token_when_half_its_life_is_gone(env: Env, cloud: Aws) -> None:
    made = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    token = made["identity"]["token"]
    clock = Clock(at(token["refresh_at"]) - timedelta(seconds=1))
    refresher = Refresher(env.server, clock=clock, leading=lambda: True)
    assert refresher.run_once() == {}  # not due yet
    assert len(cloud.issued) == 1
    seen = kinds_changed(env)
    clock.now += timedelta(seconds=1)
    assert refresher.run_once() == {"refreshed": 1}
    assert env.secret(made["id"]) == {ECR: ("AWS", cloud.issued[-1], "")}
    assert cloud.issued[-1] != cloud.issued[0]
    assert any("credential" in kinds for kinds in seen)  # the sync delivers the new token
    after = env.admin.ok("GET", f"credentials/{made['id']}")["identity"]["token"]
    issued, expires = at(after["issued_at"]), at(after["expires_at"])
    assert issued > at(token["issued_at"])
    life = expires - issued
    assert issued + life * 0.4 - LEAD <= at(after["refresh_at"]) <= issued + life / 2 - LEAD
    clock.now = utcnow()  # the new token's own time (the stand-in issues it on the real clock)
    assert refresher.run_once() == {}  # done until its next half-life


def test_a_token_given_again_writes_no_delivered_change(env: Env, cloud: Aws) -> None:
    made = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    due = at(made["identity"]["token"]["refresh_at"])
    same = Token("AWS", cloud.issued[-1], utcnow(), utcnow() + timedelta(hours=12))
    refresher = Refresher(
        env.server, clock=Clock(due), leading=lambda: True, exchange=lambda *_: same
    )
    seen = kinds_changed(env)
    assert refresher.run_once() == {"unchanged": 1}
    assert seen and all(kinds <= {"check"} for kinds in seen), seen


def test_a_failing_refresh_backs_off_and_alerts_before_the_token_expires(
    env: Env, cloud: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    token = made["identity"]["token"]
    issued, expires = at(token["issued_at"]), at(token["expires_at"])

    def refused(*_: object) -> Token:
        raise ExchangeError("denied", "the identity may not call ecr:GetAuthorizationToken")

    clock = Clock(at(token["refresh_at"]))
    refresher = Refresher(env.server, clock=clock, leading=lambda: True, exchange=refused)
    # What the API says of a token is as of the same clock.
    monkeypatch.setattr(credentials, "utcnow", clock)

    def shown_token() -> dict[str, Any]:
        found: dict[str, Any] = env.admin.ok("GET", f"credentials/{made['id']}")["identity"]
        return found["token"]

    assert refresher.run_once() == {"failed": 1}
    shown = shown_token()
    assert shown["failures"] == 1 and shown["state"] == "valid"
    assert shown["last_error"] == {
        "cause": "denied",
        "message": "the identity may not call ecr:GetAuthorizationToken",
    }
    retry = at(shown["refresh_at"])
    assert clock.now + timedelta(seconds=23) <= retry <= clock.now + timedelta(seconds=37)
    # Failing on: the waits grow to their most, and with less than a quarter of its life
    # left the token is in the alert state (listed as such) while it still works.
    waits = []
    alert_from = expires - (expires - issued) / 4
    while (due := at(shown_token()["refresh_at"])) < alert_from:
        clock.now = due
        assert shown_token()["state"] == "valid"
        assert refresher.run_once() == {"failed": 1}
        waits.append(at(shown_token()["refresh_at"]) - clock.now)
    assert waits[0] < waits[3] and max(waits) <= timedelta(minutes=18)
    clock.now = due
    listed = env.admin.ok("GET", "credentials")["items"][0]["identity"]["token"]
    assert listed["state"] == "alert" and listed["failures"] == len(waits) + 1
    assert env.secret(made["id"]) == {ECR: ("AWS", cloud.issued[0], "")}
    # Tried again before it expires; expired after that.
    assert refresher.run_once() == {"failed": 1}
    assert at(shown_token()["refresh_at"]) < expires
    clock.now = expires
    assert shown_token()["state"] == "expired"
    metrics = env.client.get("/metrics").text
    assert f'pullkeeper_token_expiry_timestamp_seconds{{credential="{made["id"]}"' in metrics


def test_one_replica_refreshes_and_another_takes_over_when_it_stops(env: Env) -> None:
    """With the sync off, replicas on one store elect a refresher with a lease of its own."""
    assert env.server.sync is None
    # The env's server runs one already (serve's): stopped, it hands the lease on.
    running = env.server.refresher
    assert isinstance(running, Refresher) and running.leading()
    other = Server.open(Settings(data=env.data, database_url=env.database_url, sync=False))
    try:
        second = Refresher(other)
        assert not second.leading()
        running.stop()
        assert second.leading()
        third = Refresher(env.server)
        assert not third.leading()
    finally:
        other.close()


def test_serve_counts_its_refreshes_in_the_metrics(env: Env, cloud: Aws) -> None:
    made = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    running = env.server.refresher
    assert isinstance(running, Refresher)
    running.stop()  # its thread out of the way: this pass runs here, at the clock's time
    running.clock = Clock(at(made["identity"]["token"]["refresh_at"]))
    assert running.run_once() == {"refreshed": 1}
    metrics = env.client.get("/metrics").text
    assert 'pullkeeper_token_refresh_total{result="refreshed"} 1.0' in metrics
    assert 'pullkeeper_token_refresh_total{result="failed"} 0.0' in metrics
