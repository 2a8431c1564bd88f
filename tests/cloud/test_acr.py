"""ACR logins: azure-identity gets a token from the stand-in of Microsoft Entra, and the stand-in
of the registry's /oauth2/exchange turns it into a refresh token."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pullkeeper.cloud import acr
from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.core.cloud import ACR_USERNAME, AzureIdentity, ExchangeError, azure_identity
from tests.cloud.azure import (
    CLIENT_CREDENTIALS,
    JWT_ASSERTION,
    MANAGEMENT_SCOPE,
    REFRESH_LIFE,
    App,
    Entra,
    Registry,
    make_certificate,
)
from tests.cloud.leaks import assert_tells_none, logged, told
from tests.cloud.standin import closed_port
from tests.registry import pki

_AZURE_ENV = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
)


@pytest.fixture(autouse=True)
def _no_azure_settings_of_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AZURE_ENV:
        monkeypatch.delenv(name, raising=False)


def secret_login(app: App, secret: str | None = None) -> tuple[AzureIdentity, str]:
    given = app.secret if secret is None else secret
    return azure_identity("secret", app.tenant_id, app.client_id, given), given


def certificate_login(app: App, pem: str | None = None) -> tuple[AzureIdentity, str]:
    assert app.certificate is not None
    given = app.certificate.pem if pem is None else pem
    return azure_identity("certificate", app.tenant_id, app.client_id, given), given


def refused(
    login: tuple[AzureIdentity, str], registry: str, client: httpx.Client, endpoints: Endpoints
) -> ExchangeError:
    identity, secret = login
    with pytest.raises(ExchangeError) as caught:
        acr.token(identity, secret, registry, client, endpoints)
    return caught.value


def sent_secrets(entra: Entra, registry: Registry, given: str) -> list[str]:
    """What was given and every token that went over the wire."""
    return [given, *entra.issued, *registry.refresh_tokens]


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def test_a_client_secret_is_exchanged_for_a_refresh_token_of_three_hours(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client, azure_endpoints: Endpoints
) -> None:
    tenant = entra.tenant()
    app = entra.app(tenant, secret="Qx8~pk-test-secret-value")
    identity, secret = secret_login(app)

    token = acr.token(identity, secret, acr_registry.host, exchange_client, azure_endpoints)

    assert (token.username, token.password) == (ACR_USERNAME, acr_registry.refresh_tokens[-1])
    claims = acr_registry.decode(token.password)
    assert (token.issued_at, token.expires_at) == (at(claims["iat"]), at(claims["exp"]))
    assert token.lifetime == timedelta(seconds=REFRESH_LIFE)
    asked = entra.received[-1]
    assert asked.path == f"/{tenant}/oauth2/v2.0/token"
    assert asked.form["grant_type"] == CLIENT_CREDENTIALS
    assert asked.form["scope"] == MANAGEMENT_SCOPE
    assert asked.form["client_secret"] == secret
    [exchanged] = acr_registry.received
    assert (exchanged.method, exchanged.path) == ("POST", "/oauth2/exchange")
    assert exchanged.form == {
        "grant_type": "access_token",
        "service": acr_registry.host,
        "tenant": tenant,
        "access_token": entra.issued[-1],
    }


def test_a_certificate_signs_the_login_and_is_not_sent(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client, azure_endpoints: Endpoints
) -> None:
    app = entra.app(entra.tenant(), certificate=True)
    identity, pem = certificate_login(app)

    token = acr.token(identity, pem, acr_registry.host, exchange_client, azure_endpoints)

    assert token.password == acr_registry.refresh_tokens[-1]
    asked = entra.received[-1].form
    assert asked["client_assertion_type"] == JWT_ASSERTION
    assert "client_secret" not in asked
    assert_tells_none(str(asked), [pem])


def test_the_expiry_is_the_refresh_tokens_exp_and_without_iat_it_was_issued_now(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client, azure_endpoints: Endpoints
) -> None:
    expires = int(datetime.now(UTC).timestamp()) + REFRESH_LIFE + 17
    acr_registry.claims = {"exp": expires, "iat": None}
    identity, secret = secret_login(entra.app(entra.tenant(), secret="pk-secret-2"))

    before = datetime.now(UTC)
    token = acr.token(identity, secret, acr_registry.host, exchange_client, azure_endpoints)
    after = datetime.now(UTC)

    assert "iat" not in acr_registry.decode(token.password)
    assert token.expires_at == at(expires)
    assert before <= token.issued_at <= after


def _wrong_secret(entra: Entra) -> tuple[AzureIdentity, str]:
    return secret_login(entra.app(entra.tenant(), secret="the-right-one"), "Wr0ng~secret-value")


def _unknown_app(entra: Entra) -> tuple[AzureIdentity, str]:
    stranger = App(tenant_id=entra.tenant(), client_id=str(uuid.uuid4()), secret="pk-secret-3")
    return secret_login(stranger)


def _unknown_tenant(entra: Entra) -> tuple[AzureIdentity, str]:
    lost = App(tenant_id=str(uuid.uuid4()), client_id=str(uuid.uuid4()), secret="pk-secret-4")
    return secret_login(lost)


def _unregistered_certificate(entra: Entra) -> tuple[AzureIdentity, str]:
    app = entra.app(entra.tenant(), certificate=True)
    return certificate_login(app, make_certificate(app.client_id).pem)


@pytest.mark.parametrize(
    ("login", "code", "fix"),
    [
        (_wrong_secret, "AADSTS7000215", "the client secret is wrong"),
        (_unknown_app, "AADSTS700016", "no application with this client id"),
        (_unknown_tenant, "AADSTS90002", "there is no such tenant"),
        (_unregistered_certificate, "AADSTS700027", "not one of the application's"),
    ],
)
def test_entras_refusals_are_invalid_and_say_what_to_mend(
    entra: Entra,
    acr_registry: Registry,
    exchange_client: httpx.Client,
    azure_endpoints: Endpoints,
    login: Callable[[Entra], tuple[AzureIdentity, str]],
    code: str,
    fix: str,
) -> None:
    given = login(entra)

    e = refused(given, acr_registry.host, exchange_client, azure_endpoints)

    assert e.cause == "invalid"
    assert not e.retry
    assert f"({code})" in e.message
    assert fix in e.message
    assert acr_registry.received == []
    assert_tells_none(told(e), sent_secrets(entra, acr_registry, given[1]))


@pytest.mark.parametrize(
    ("status", "body", "cause", "words"),
    [
        (401, {"errors": [{"code": "UNAUTHORIZED"}]}, "denied", "needs the AcrPull role"),
        (403, {"errors": [{"code": "DENIED"}]}, "denied", "needs the AcrPull role"),
        (404, {"errors": [{"code": "NOT_FOUND"}]}, "invalid", "an Azure container registry?"),
        (503, {"errors": [{"code": "UNAVAILABLE"}]}, "unreachable", "(HTTP 503)"),
        (200, {"access_token": "not-what-was-asked"}, "invalid", "without a refresh token"),
    ],
)
def test_what_the_registrys_exchange_answers_is_told(
    entra: Entra,
    acr_registry: Registry,
    exchange_client: httpx.Client,
    azure_endpoints: Endpoints,
    status: int,
    body: dict[str, object],
    cause: str,
    words: str,
) -> None:
    given = secret_login(entra.app(entra.tenant(), secret="pk-secret-5"))
    acr_registry.fail_next(status, body)

    e = refused(given, acr_registry.host, exchange_client, azure_endpoints)

    assert e.cause == cause
    assert words in e.message
    assert acr_registry.host in e.message
    assert_tells_none(told(e), sent_secrets(entra, acr_registry, given[1]))


def test_a_refresh_token_without_its_expiry_is_invalid(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client, azure_endpoints: Endpoints
) -> None:
    acr_registry.claims = {"exp": None}
    given = secret_login(entra.app(entra.tenant(), secret="pk-secret-6"))

    e = refused(given, acr_registry.host, exchange_client, azure_endpoints)

    assert e.cause == "invalid"
    assert "does not say when it expires" in e.message
    assert_tells_none(told(e), sent_secrets(entra, acr_registry, given[1]))


def test_a_registry_not_answering_is_unreachable(
    entra: Entra, exchange_client: httpx.Client, azure_endpoints: Endpoints
) -> None:
    given = secret_login(entra.app(entra.tenant(), secret="pk-secret-7"))
    nowhere = f"127.0.0.1:{closed_port()}"

    e = refused(given, nowhere, exchange_client, azure_endpoints)

    assert e.cause == "unreachable"
    assert e.retry
    assert nowhere in e.message
    assert_tells_none(told(e), [given[1], *entra.issued])


def test_entra_not_answering_is_unreachable(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client, stand_in_cert: pki.Issued
) -> None:
    given = secret_login(entra.app(entra.tenant(), secret="pk-secret-8"))
    nowhere = Endpoints(
        azure_authority=f"https://127.0.0.1:{closed_port()}", ca_file=str(stand_in_cert.cert_file)
    )

    e = refused(given, acr_registry.host, exchange_client, nowhere)

    assert e.cause == "unreachable"
    assert "Microsoft Entra could not be reached" in e.message
    assert acr_registry.received == []


def test_the_settings_ca_file_is_what_entra_is_trusted_by(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client
) -> None:
    given = secret_login(entra.app(entra.tenant(), secret="pk-secret-9"))

    e = refused(given, acr_registry.host, exchange_client, Endpoints(azure_authority=entra.url))

    assert e.cause == "unreachable"
    assert "TLS certificate is not trusted" in e.message
    assert entra.received == []


def test_workload_identity_sends_the_pods_federated_token(
    entra: Entra,
    acr_registry: Registry,
    exchange_client: httpx.Client,
    azure_endpoints: Endpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    federated = "eyJhbGciOiJSUzI1NiJ9.pod-service-account-token.sig"
    app = entra.app(entra.tenant(), federated_token=federated)
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(federated)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    identity = azure_identity("workload", app.tenant_id, app.client_id)

    token = acr.token(identity, "", acr_registry.host, exchange_client, azure_endpoints)

    assert token.password == acr_registry.refresh_tokens[-1]
    assert entra.received[-1].form["client_assertion"] == federated


def test_workload_identity_not_set_up_is_invalid(
    entra: Entra, acr_registry: Registry, exchange_client: httpx.Client, azure_endpoints: Endpoints
) -> None:
    e = refused(
        (azure_identity("workload"), ""), acr_registry.host, exchange_client, azure_endpoints
    )

    assert e.cause == "invalid"
    assert "AZURE_FEDERATED_TOKEN_FILE" in e.message
    assert entra.received == []


def test_the_default_chain_uses_this_servers_own_settings(
    entra: Entra,
    acr_registry: Registry,
    exchange_client: httpx.Client,
    azure_endpoints: Endpoints,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = entra.app(entra.tenant(), secret="pk-server-own-secret")
    monkeypatch.setenv("AZURE_TENANT_ID", app.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", app.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", app.secret)

    token = acr.token(
        azure_identity("default"), "", acr_registry.host, exchange_client, azure_endpoints
    )

    assert token.password == acr_registry.refresh_tokens[-1]
    # The identity names no tenant: the exchange is asked without one.
    assert "tenant" not in acr_registry.received[-1].form


def test_the_default_chain_without_an_identity_of_this_server_says_so(
    entra: Entra,
    acr_registry: Registry,
    exchange_client: httpx.Client,
    azure_endpoints: Endpoints,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the environment's settings (none): what else the chain tries depends on the host.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")

    e = refused(
        (azure_identity("default"), ""), acr_registry.host, exchange_client, azure_endpoints
    )

    assert e.cause == "invalid"
    assert "no Azure identity of its own" in e.message
    assert entra.received == []


def test_no_secret_reaches_the_logs(
    entra: Entra,
    acr_registry: Registry,
    exchange_client: httpx.Client,
    azure_endpoints: Endpoints,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = entra.app(entra.tenant(), secret="Lg5~pk-logged-nowhere")
    certified = entra.app(entra.tenant(), certificate=True)

    made = [
        acr.token(*secret_login(app), acr_registry.host, exchange_client, azure_endpoints),
        acr.token(
            *certificate_login(certified), acr_registry.host, exchange_client, azure_endpoints
        ),
    ]
    wrong = secret_login(app, "Wr0ng~logged-nowhere")
    e = refused(wrong, acr_registry.host, exchange_client, azure_endpoints)

    assert e.cause == "invalid"
    seen = {r.name.split(".")[0] for r in caplog.records}
    assert {"azure", "msal", "httpx"} <= seen  # the SDKs' own records were looked through
    assert certified.certificate is not None
    secrets = [app.secret, certified.certificate.pem, wrong[1], *entra.issued]
    assert_tells_none(logged(caplog.records), [*secrets, *(t.password for t in made)])
    assert all(t.password not in repr(t) for t in made)
