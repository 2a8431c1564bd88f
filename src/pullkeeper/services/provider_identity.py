"""The cloud identity a kubelet credential provider logs in with: its file read and checked,
and exchanged for a registry token.

The file (YAML or JSON) names the provider (ecr, gcr, acr), the registry's address and the
identity's fields as a credential's cloud identity has them; a secret is never in it, only
the path of the file that holds it (readable by the kubelet alone), or nothing: the node's
own identity then (the SDK's default chain, workload identity, the metadata server). Where
the exchanges go (endpoints, CA file) is the command's to say, never the file's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.cloud.exchange import token
from pullkeeper.core.cloud import (
    AZURE_AUTH,
    AwsIdentity,
    AzureIdentity,
    IdentityError,
    Token,
    aws_identity,
    azure_identity,
    gcp_key,
)
from pullkeeper.core.providers import PROVIDERS

if TYPE_CHECKING:
    import httpx

__all__ = ["FIELDS", "Identity", "exchange", "load", "parse"]

_T = TypeVar("_T")

# The fields each provider's identity may have, beside provider and server. A *_file field
# names the file holding a secret.
FIELDS = {
    "ecr": ("access_key_id", "secret_access_key_file", "role_arn", "external_id"),
    "gcr": ("key_file",),
    "acr": ("auth", "tenant_id", "client_id", "secret_file"),
}
# Secrets written into the file itself (as core.cloud's checks name them, too), and the
# field that names their file instead.
_INLINE_SECRETS = {
    "secret_access_key": "secret_access_key_file",
    "key": "key_file",
    "client_secret": "secret_file",
    "secret": "secret_file",
    "password": "secret_file",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """A checked identity file: the registry it logs in to, and how."""

    provider: str  # ecr, gcr or acr
    server: str  # the registry's host: the key of the answer's auth map
    aws: AwsIdentity | None = None
    azure: AzureIdentity | None = None
    # ECR's secret access key, GCR's service-account key (JSON), ACR's client secret or
    # certificate PEM; "" for the node's own identity.
    secret: str = field(default="", repr=False)


def load(path: str) -> Identity:
    """The identity in the file at path; OSError when it or its secret's file cannot be
    read, IdentityError naming the field to fix."""
    return parse(Path(path).read_text(encoding="utf-8"), _read_secret)


def _read_secret(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def _document(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        pass
    # YAML only when the file is no JSON: the kubelet runs this on every uncached pull.
    import yaml  # noqa: PLC0415

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise IdentityError("file", f"not JSON, nor YAML{where}") from None


def parse(text: str, read_secret: Callable[[str], str]) -> Identity:
    """The identity the file's text says, its secret read with read_secret(path);
    IdentityError naming the field to fix."""
    doc = _document(text)
    if not isinstance(doc, dict):
        raise IdentityError("file", "the identity file is a mapping: provider, server, ...")
    fields = _strings(doc)
    provider = fields.pop("provider", "")
    if provider not in FIELDS:
        raise IdentityError("provider", "the provider is one of: " + ", ".join(FIELDS))
    server = fields.pop("server", "")
    for name in fields:
        if name in _INLINE_SECRETS:
            raise IdentityError(
                name,
                f"a secret is not written in the identity file: put it in a file only the "
                f"kubelet can read, and name that file in {_INLINE_SECRETS[name]}",
            )
        if name not in FIELDS[provider]:
            raise IdentityError(
                name,
                f"{provider} identities have no {name}; their fields: provider, server, "
                + ", ".join(FIELDS[provider]),
            )
    secret_field = next((f for f in FIELDS[provider] if f.endswith("_file")), "")
    secret = ""
    if fields.get(secret_field):
        try:
            secret = read_secret(fields[secret_field])
        except OSError as e:
            raise IdentityError(
                secret_field, f"{fields[secret_field]}: cannot read: {e.strerror or e}"
            ) from None
        if not secret:
            raise IdentityError(secret_field, f"{fields[secret_field]} is empty")
    if provider == "ecr":
        aws = _renamed(
            lambda: aws_identity(
                server,
                fields.get("access_key_id", ""),
                secret,
                fields.get("role_arn", ""),
                fields.get("external_id", ""),
            ),
            secret_field,
        )
        return Identity(provider, server, aws=aws, secret=secret)
    _check_server(provider, server)
    if provider == "gcr":
        if secret:
            _renamed(lambda: gcp_key(secret), secret_field)
        return Identity(provider, server, secret=secret)
    auth = fields.get("auth", "")
    if not auth:
        raise IdentityError("auth", "the Azure login is one of: " + ", ".join(AZURE_AUTH))
    azure = _renamed(
        lambda: azure_identity(
            auth, fields.get("tenant_id", ""), fields.get("client_id", ""), secret
        ),
        secret_field,
    )
    return Identity(provider, server, azure=azure, secret=secret)


def _strings(doc: Mapping[Any, Any]) -> dict[str, str]:
    fields = {}
    for name, value in doc.items():
        if not isinstance(value, str):
            raise IdentityError(str(name), "every field's value is a string")
        fields[str(name)] = value
    return fields


def _check_server(provider: str, server: str) -> None:
    p = PROVIDERS[provider]
    if not server or not re.fullmatch(p.server_pattern or "", server):
        raise IdentityError("server", f"{server!r} is not {p.server_hint}")


def _renamed(check: Callable[[], _T], secret_field: str) -> _T:
    """check(), with an IdentityError's field named as the file names it (the secret's, by
    secret_field, the field naming its file)."""
    try:
        return check()
    except IdentityError as e:
        raise IdentityError(e.field_as(secret_field), e.message) from None


def exchange(identity: Identity, endpoints: Endpoints, acr_exchange_host: str = "") -> Token:
    """A registry login from the identity; ExchangeError saying what failed. An ACR login is
    exchanged at acr_exchange_host when given, else at the identity's registry."""

    def acr_client() -> httpx.Client:
        # httpx only here: answering from a file loads none.
        import ssl  # noqa: PLC0415

        import httpx  # noqa: PLC0415

        trust = ssl.create_default_context(cafile=endpoints.ca_file) if endpoints.ca_file else True
        return httpx.Client(verify=trust, timeout=30)

    return token(
        identity.aws or identity.azure,
        identity.secret,
        endpoints,
        acr_exchange_host or identity.server,
        acr_client,
    )
