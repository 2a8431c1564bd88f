"""Registry clients shared by many checks, so connections and tokens are reused."""

from __future__ import annotations

import threading

from pullkeeper.core.egress import EgressPolicy
from pullkeeper.registry.auth import Login
from pullkeeper.registry.client import TLS, Registry, api_host

__all__ = ["RegistryPool"]


class RegistryPool:
    """One client per registry host, login and TLS settings; thread-safe."""

    def __init__(
        self, *, timeout: float = 15.0, retries: int = 3, egress: EgressPolicy | None = None
    ) -> None:
        self._timeout, self._retries, self._egress = timeout, retries, egress
        self._clients: dict[tuple[str, Login, TLS], Registry] = {}
        self._lock = threading.Lock()

    def get(self, host: str, login: Login, tls: TLS) -> Registry:
        key = (api_host(host), login, tls)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = Registry(
                    host,
                    login,
                    tls,
                    timeout=self._timeout,
                    retries=self._retries,
                    egress=self._egress,
                )
                self._clients[key] = client
            return client

    @property
    def requests(self) -> int:
        """HTTP requests sent by every client of the pool, token requests included."""
        with self._lock:
            return sum(c.requests for c in self._clients.values())

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> RegistryPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
