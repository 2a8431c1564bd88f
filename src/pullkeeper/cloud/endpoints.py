"""Where the token exchanges go: the clouds' own endpoints, or others the server's settings
name (an admin's choice: a VPC endpoint, a sovereign cloud, the tests' stand-ins on
loopback), never a credential, so no user can send a signed request elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from pullkeeper.core.cloud import GOOGLE_TOKEN_URI

__all__ = ["Endpoints"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    # ECR's and STS's endpoint URL; None: AWS's regional endpoints.
    aws: str | None = None
    # The token URIs a service-account key may name (a key names its own token_uri).
    google_token_uris: tuple[str, ...] = (GOOGLE_TOKEN_URI,)
    # The Microsoft Entra authority host; None: azure-identity's (login.microsoftonline.com).
    azure_authority: str | None = None
    # A CA bundle file the exchanges trust instead of the system's (a proxy's, the tests' CA).
    ca_file: str | None = None
