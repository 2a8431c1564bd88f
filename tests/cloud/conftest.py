"""Stand-ins of the clouds on 127.0.0.1, over TLS with a certificate made for the session: its
file is the CA file the exchanges trust (google-auth and msal send nothing over plain HTTP)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from pullkeeper.cloud.endpoints import Endpoints
from tests.cloud.azure import Entra, Registry
from tests.cloud.google_token import GoogleTokenEndpoint
from tests.cloud.standin import server_tls
from tests.registry import pki


@pytest.fixture(scope="session")
def stand_in_cert(tmp_path_factory: pytest.TempPathFactory) -> pki.Issued:
    """The stand-ins' certificate, for 127.0.0.1, and its own trust anchor."""
    return pki.self_signed_server(tmp_path_factory.mktemp("stand-in-tls") / "stand-in")


@pytest.fixture(scope="session")
def stand_in_tls(stand_in_cert: pki.Issued) -> ssl.SSLContext:
    return server_tls(str(stand_in_cert.cert_file), str(stand_in_cert.key_file))


@pytest.fixture
def google(stand_in_tls: ssl.SSLContext) -> Iterator[GoogleTokenEndpoint]:
    endpoint = GoogleTokenEndpoint(stand_in_tls)
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def google_endpoints(google: GoogleTokenEndpoint, stand_in_cert: pki.Issued) -> Endpoints:
    """Settings that send keys to the stand-in and trust its certificate."""
    return Endpoints(google_token_uris=(google.token_uri,), ca_file=str(stand_in_cert.cert_file))


@pytest.fixture
def entra(stand_in_tls: ssl.SSLContext) -> Iterator[Entra]:
    authority = Entra(stand_in_tls)
    authority.start()
    yield authority
    authority.stop()


@pytest.fixture
def acr_registry(stand_in_tls: ssl.SSLContext, entra: Entra) -> Iterator[Registry]:
    """A registry whose exchange takes the tokens `entra` issues."""
    registry = Registry(stand_in_tls, entra)
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture
def azure_endpoints(entra: Entra, stand_in_cert: pki.Issued) -> Endpoints:
    """Settings whose Entra authority is the stand-in, and which trust its certificate."""
    return Endpoints(azure_authority=entra.url, ca_file=str(stand_in_cert.cert_file))


@pytest.fixture
def exchange_client(stand_in_cert: pki.Issued) -> Iterator[httpx.Client]:
    """The caller's client for the registry's exchange, trusting the stand-ins."""
    with httpx.Client(
        verify=ssl.create_default_context(cafile=str(stand_in_cert.cert_file)), timeout=10
    ) as client:
        yield client
