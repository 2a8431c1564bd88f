"""Stand-ins of the clouds on 127.0.0.1, over TLS with a certificate made for the session: its
file is the CA file the exchanges trust (google-auth and msal send nothing over plain HTTP)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from pullkeeper.cloud.endpoints import Endpoints
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

