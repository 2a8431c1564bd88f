"""GCR and Artifact Registry logins: google-auth exchanges a service-account key at the stand-in
of Google's token endpoint, which checks the assertion as Google does."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pullkeeper.cloud import gcr
from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.core.cloud import GCR_USERNAME, GOOGLE_TOKEN_URI, ExchangeError
from tests.cloud.google_token import (
    EXPIRES_IN,
    JWT_BEARER,
    GoogleTokenEndpoint,
    ServiceAccountKey,
)
from tests.cloud.leaks import assert_tells_none, logged, told
from tests.cloud.standin import closed_port
from tests.registry import pki


def refused(key: ServiceAccountKey | None, endpoints: Endpoints) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        gcr.token(key.json if key else None, endpoints)
    return caught.value


def sent_secrets(google: GoogleTokenEndpoint, key: ServiceAccountKey) -> list[str]:
    """The key's private half and every assertion and token that went over the wire."""
    assertions = [r.form["assertion"] for r in google.received if "assertion" in r.form]
    return [key.private_key, *assertions, *google.issued]


def test_a_key_is_exchanged_for_an_access_token_of_an_hour(
    google: GoogleTokenEndpoint, google_endpoints: Endpoints
) -> None:
    key = google.service_account_key()
    before = datetime.now(UTC)
    token = gcr.token(key.json, google_endpoints)
    after = datetime.now(UTC)

    assert (token.username, token.password) == (GCR_USERNAME, google.issued[-1])
    assert before <= token.issued_at <= after
    assert token.expires_at.tzinfo is UTC
    life = timedelta(seconds=EXPIRES_IN)
    assert before + life <= token.expires_at <= after + life
    [sent] = google.received
    assert (sent.method, sent.form["grant_type"]) == ("POST", JWT_BEARER)
    [claims] = google.claims
    assert claims["iss"] == key.info["client_email"]
    assert claims["aud"] == GOOGLE_TOKEN_URI
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600


def test_a_key_naming_a_token_endpoint_not_in_the_settings_is_sent_nowhere(
    google: GoogleTokenEndpoint, stand_in_cert: pki.Issued
) -> None:
    key = google.service_account_key()
    only_google = Endpoints(ca_file=str(stand_in_cert.cert_file))

    e = refused(key, only_google)

    assert e.cause == "invalid"
    assert google.token_uri in e.message
    assert "does not send keys to" in e.message
    assert google.received == []
    assert_tells_none(told(e), [key.private_key])


def test_a_deleted_or_wrong_key_is_invalid_and_wants_a_new_key(
    google: GoogleTokenEndpoint, google_endpoints: Endpoints
) -> None:
    key = google.wrong_key(google.service_account_key())

    e = refused(key, google_endpoints)

    assert e.cause == "invalid"
    assert "create a new key" in e.message
    assert "(invalid_grant)" in e.message
    assert len(google.received) == 1
    assert_tells_none(told(e), sent_secrets(google, key))


def test_what_is_not_a_key_is_invalid(google_endpoints: Endpoints) -> None:
    with pytest.raises(ExchangeError) as caught:
        gcr.token('{"type": "authorized_user"}', google_endpoints)
    e = caught.value
    assert e.cause == "invalid"
    assert "not a service-account key" in e.message


@pytest.mark.parametrize("ahead", [timedelta(hours=2), -timedelta(hours=2)])
def test_a_clock_out_of_step_is_told_as_such(
    google: GoogleTokenEndpoint, google_endpoints: Endpoints, ahead: timedelta
) -> None:
    key = google.service_account_key()
    google.clock_offset = ahead.total_seconds()

    e = refused(key, google_endpoints)

    assert e.cause == "clock"
    assert e.retry
    assert "NTP" in e.message
    assert_tells_none(told(e), sent_secrets(google, key))


def test_a_service_account_without_the_permission_is_denied(
    google: GoogleTokenEndpoint, google_endpoints: Endpoints
) -> None:
    key = google.service_account_key()
    google.fail_next(
        403,
        {
            "error": "access_denied",
            "error_description": "Permission 'iam.serviceAccounts.getAccessToken' denied",
        },
    )

    e = refused(key, google_endpoints)

    assert e.cause == "denied"
    assert "roles/artifactregistry.reader" in e.message
    assert_tells_none(told(e), sent_secrets(google, key))


def test_google_failing_is_unreachable_after_google_auths_own_retries(
    google: GoogleTokenEndpoint, google_endpoints: Endpoints
) -> None:
    key = google.service_account_key()
    google.fail_next(503, {"error": "temporarily_unavailable"}, count=3)

    e = refused(key, google_endpoints)

    assert e.cause == "unreachable"
    assert e.retry
    assert len(google.received) == 3
    assert_tells_none(told(e), sent_secrets(google, key))


def test_no_answer_is_unreachable(google: GoogleTokenEndpoint, stand_in_cert: pki.Issued) -> None:
    nowhere = f"https://127.0.0.1:{closed_port()}/token"
    key = google.service_account_key().pointing_at(nowhere)

    e = refused(key, Endpoints(google_token_uris=(nowhere,), ca_file=str(stand_in_cert.cert_file)))

    assert e.cause == "unreachable"
    assert nowhere in e.message
    assert "no connection" in e.message
    assert_tells_none(told(e), [key.private_key])


def test_the_settings_ca_file_is_what_the_endpoint_is_trusted_by(
    google: GoogleTokenEndpoint,
) -> None:
    key = google.service_account_key()

    e = refused(key, Endpoints(google_token_uris=(google.token_uri,)))

    assert e.cause == "unreachable"
    assert "TLS certificate is not trusted" in e.message
    assert google.received == []


def test_without_a_key_this_servers_own_credentials_are_used(
    google: GoogleTokenEndpoint,
    google_endpoints: Endpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = tmp_path / "server-key.json"
    own.write_text(google.service_account_key("pullkeeper-server").json)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(own))

    token = gcr.token(None, google_endpoints)

    assert token.password == google.issued[-1]
    assert google.claims[-1]["iss"] == "pullkeeper-server@pk-test.iam.gserviceaccount.com"


def test_without_a_key_or_credentials_of_its_own_the_server_says_so(
    google_endpoints: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud login
    # Not on Google's machines, wherever the test runs (google-auth reads NO_GCE_CHECK once,
    # when it is imported).
    monkeypatch.setattr("google.auth.compute_engine._metadata._NO_GCE_CHECK", True)

    e = refused(None, google_endpoints)

    assert e.cause == "invalid"
    assert "no Google credentials of its own" in e.message


def test_no_secret_reaches_the_logs(
    google: GoogleTokenEndpoint, google_endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    key = google.service_account_key()
    caplog.set_level(logging.DEBUG)

    token = gcr.token(key.json, google_endpoints)
    wrong = google.wrong_key(key)
    e = refused(wrong, google_endpoints)

    assert e.cause == "invalid"
    assert any(r.name == "httpx" for r in caplog.records)  # the HTTP client's were looked at
    secrets = [*sent_secrets(google, key), wrong.private_key, token.password]
    assert_tells_none(logged(caplog.records), secrets)
    assert token.password not in repr(token)
