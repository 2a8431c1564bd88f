"""A cloud identity exchanged for a registry token by its cloud's adapter: the one dispatch
of the server's credentials and the kubelet's credential provider alike.

Each adapter, with its SDK and httpx, is imported only when its exchange runs: a credential
provider answering from its cache loads none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.core.cloud import AwsIdentity, AzureIdentity, Token

if TYPE_CHECKING:
    import httpx

__all__ = ["token"]


def token(
    identity: AwsIdentity | AzureIdentity | None,
    secret: str,
    endpoints: Endpoints,
    registry: str,
    acr_client: Callable[[], httpx.Client],
) -> Token:
    """A registry login from the identity (None: a GCR key, `secret`, or the host's own
    Google credentials when there is none); ExchangeError saying what failed. An ACR login
    is exchanged at `registry` over the client acr_client() makes (closed after)."""
    if isinstance(identity, AwsIdentity):
        from pullkeeper.cloud import ecr  # noqa: PLC0415

        return ecr.token(identity, secret, endpoints)
    if isinstance(identity, AzureIdentity):
        from pullkeeper.cloud import acr  # noqa: PLC0415

        with acr_client() as client:
            return acr.token(identity, secret, registry, client, endpoints)
    from pullkeeper.cloud import gcr  # noqa: PLC0415

    return gcr.token(secret or None, endpoints)
