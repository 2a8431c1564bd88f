"""Fixtures for registry-client tests: real registries (distribution 2.8.2), a token server,
a fault proxy. See servers.py for what each fixture's dataclass holds.

A missing tool (docker-registry, skopeo, htpasswd) fails the tests that need it under CI and
skips them loudly elsewhere,
through the integration suite's `require`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from tests.integration.conftest import require
from tests.registry import servers
from tests.registry.fault_proxy import FaultProxy
from tests.registry.servers import (
    BasicRegistry,
    Layouts,
    MtlsRegistry,
    PlainRegistry,
    TokenRegistry,
)
from tests.registry.token_server import TokenServer

# The server suite's store fixtures, for the tests of checks the server runs.
from tests.server.conftest import backend, env, template  # noqa: F401

WHY = "the registry-client tests"


def _require_registry_tools() -> None:
    require("docker-registry", WHY)
    require("skopeo", WHY)


@pytest.fixture(scope="session")
def oci_layouts(tmp_path_factory: pytest.TempPathFactory) -> Layouts:
    """The images every registry gets, as OCI layouts built once."""
    return servers.build_layouts(tmp_path_factory.mktemp("oci-layouts"))


@pytest.fixture(scope="session")
def basic_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: Layouts
) -> Iterator[BasicRegistry]:
    """htpasswd (bcrypt) auth, self-signed TLS; alice's password holds ':' and non-ASCII."""
    _require_registry_tools()
    require("htpasswd", WHY)
    with servers.basic_registry(tmp_path_factory.mktemp("basic-registry"), oci_layouts) as r:
        yield r


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: Layouts
) -> Iterator[TokenRegistry]:
    """Token auth over self-signed TLS; the token server is shared by the whole session, so
    use the `token_server` fixture to start a test from clean counters and defaults."""
    _require_registry_tools()
    with servers.token_registry(tmp_path_factory.mktemp("token-registry"), oci_layouts) as r:
        yield r


@pytest.fixture
def token_server(token_registry: TokenRegistry) -> Iterator[TokenServer]:
    """The token registry's token server, reset before and after the test."""
    token_registry.token_server.reset()
    yield token_registry.token_server
    token_registry.token_server.reset()


@pytest.fixture(scope="session")
def plain_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: Layouts
) -> Iterator[PlainRegistry]:
    """Plain HTTP, no auth."""
    _require_registry_tools()
    with servers.plain_registry(tmp_path_factory.mktemp("plain-registry"), oci_layouts) as r:
        yield r


@pytest.fixture(scope="session")
def mtls_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: Layouts
) -> Iterator[MtlsRegistry]:
    """TLS that requires a client certificate; no other auth."""
    _require_registry_tools()
    with servers.mtls_registry(tmp_path_factory.mktemp("mtls-registry"), oci_layouts) as r:
        yield r


class MakeFaultProxy(Protocol):
    def __call__(self, upstream: str | None = None) -> FaultProxy:
        """A started proxy in front of `upstream` (default: plain_registry.host)."""
        ...


@pytest.fixture
def fault_proxy(plain_registry: PlainRegistry) -> Iterator[MakeFaultProxy]:
    """Factory of fault proxies (in front of plain_registry unless told otherwise); every
    proxy made is stopped at the end of the test."""
    made: list[FaultProxy] = []

    def make(upstream: str | None = None) -> FaultProxy:
        proxy = FaultProxy(upstream or plain_registry.host)
        proxy.start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()
