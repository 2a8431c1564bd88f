"""Connections the egress policy allows: names resolved here, each address judged, and only
an allowed address connected to, so no second lookup can point elsewhere (DNS rebinding)."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from pullkeeper.core.egress import EgressPolicy, Refusal

__all__ = ["EgressRefused", "GuardedTransport", "allowed_addresses"]


class EgressRefused(httpcore.ConnectError):
    """Every address of a destination is refused by the egress policy; nothing was sent."""

    def __init__(self, refusal: Refusal, host: str, port: int) -> None:
        self.sentence = refusal.sentence(host, port)
        self.setting = refusal.setting
        super().__init__(self.sentence)


def _is_local(address: str) -> bool:
    """Whether this machine holds the address: only then can binding to it succeed."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


def allowed_addresses(policy: EgressPolicy, host: str, port: int) -> list[str]:
    """The addresses of host the policy allows, in resolver order; EgressRefused when none is
    (socket.gaierror when the name does not resolve)."""
    name = host.strip("[]")
    found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    allowed, first = [], None
    for address in addresses:
        local = port in policy.own_ports and _is_local(address.split("%", 1)[0])
        refusal = policy.judge(name, address, port, local=local)
        if refusal is None:
            allowed.append(address)
        elif first is None:
            first = EgressRefused(refusal, name, port)
    if not allowed and first is not None:
        raise first
    return allowed


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = allowed_addresses(self._policy, host, port)
        except socket.gaierror as e:
            raise httpcore.ConnectError(str(e)) from e
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                # The name stays the TLS server name: httpcore sends SNI and checks the
                # certificate against the host asked for, not this address.
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as e:
                failure = e
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the egress policy allows no unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting only where the egress policy allows. Proxies from the
    environment are not used: through one, the address connected to could not be judged."""

    def __init__(self, policy: EgressPolicy, verify: Any) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy),
        )
