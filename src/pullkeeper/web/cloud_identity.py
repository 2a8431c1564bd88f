"""A credential's cloud identity on the Registries pages: the identity fields of the Add and
Edit forms as the API's `identity`, the service's errors placed at those fields, and the
words of the token's badge.

Secrets (an AWS secret access key, a Google service-account key, an Azure client secret
or certificate) come from password inputs, a textarea or an uploaded file, and are never
put back into a page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import File, Form, UploadFile

from pullkeeper.core.cloud import AZURE_AUTH, IDENTITY_KINDS
from pullkeeper.core.durations import relative, span
from pullkeeper.web import forms

__all__ = [
    "AZURE_AUTH",
    "ERROR_FIELDS",
    "FIELD_WORDS",
    "KINDS",
    "KIND_WORDS",
    "badge",
    "forget_secrets",
    "from_now",
    "identity_body",
    "identity_values",
    "place_errors",
]

# The providers whose credentials may log in with a cloud identity, and its kind.
KINDS = IDENTITY_KINDS
# How a page names an identity's kind and its shown fields.
KIND_WORDS = {
    "aws": "AWS",
    "gcp": "Google service account",
    "azure": "Microsoft Entra",
}
FIELD_WORDS = {
    "access_key_id": "access key id",
    "role_arn": "role",
    "external_id": "external id",
    "client_email": "service account",
    "private_key_id": "key id",
    "auth": "signs in with",
    "tenant_id": "tenant",
    "client_id": "client id",
}
# The forms' secret fields: never sent back into a page.
SECRET_FIELDS = ("password", "secret_access_key", "gcp_key", "client_secret", "certificate")
# The service's error fields for an identity (what forms.failure keeps at a field).
ERROR_FIELDS = (
    "identity",
    "identity.kind",
    "identity.access_key_id",
    "identity.role_arn",
    "identity.external_id",
    "identity.auth",
    "identity.tenant_id",
    "identity.client_id",
    "identity.secret",
)
KEY_FILE_LIMIT = 64 * 1024  # a service-account JSON key or a PEM is a few KiB


async def identity_values(  # a coroutine: trimming fields needs no thread
    login: Annotated[str, Form(max_length=16)] = "",
    access_key_id: Annotated[str, Form(max_length=128)] = "",
    secret_access_key: Annotated[str, Form(max_length=1024)] = "",
    role_arn: Annotated[str, Form(max_length=2048)] = "",
    external_id: Annotated[str, Form(max_length=1224)] = "",
    gcp_key: Annotated[str, Form(max_length=KEY_FILE_LIMIT)] = "",
    gcp_key_file: Annotated[UploadFile | None, File()] = None,
    azure_auth: Annotated[str, Form(max_length=16)] = "",
    tenant_id: Annotated[str, Form(max_length=253)] = "",
    client_id: Annotated[str, Form(max_length=64)] = "",
    client_secret: Annotated[str, Form(max_length=4096)] = "",
    certificate: Annotated[str, Form(max_length=KEY_FILE_LIMIT)] = "",
    certificate_file: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """The identity fields of a form as typed (an uploaded file stands in for an empty
    text), with the upload's errors under "errors"."""
    errors: forms.Errors = {}
    key = gcp_key.strip() or forms.upload_text(
        gcp_key_file, errors, "gcp_key", "the service-account JSON key", KEY_FILE_LIMIT
    )
    cert = certificate.strip() or forms.upload_text(
        certificate_file, errors, "certificate", "the certificate (PEM)", KEY_FILE_LIMIT
    )
    return {
        "login": "identity" if login == "identity" else "password",
        "access_key_id": access_key_id.strip(),
        "secret_access_key": secret_access_key.strip(),
        "role_arn": role_arn.strip(),
        "external_id": external_id.strip(),
        "gcp_key": key,
        "azure_auth": azure_auth if azure_auth in AZURE_AUTH else "secret",
        "tenant_id": tenant_id.strip(),
        "client_id": client_id.strip(),
        "client_secret": client_secret,
        "certificate": cert,
        "errors": errors,
    }


def forget_secrets(values: dict[str, Any]) -> None:
    """A form's values with every secret emptied, for the page that shows them again."""
    for name in SECRET_FIELDS:
        if name in values:
            values[name] = ""


def identity_body(kind: str, v: dict[str, Any]) -> dict[str, str]:
    """The API's `identity` from the form's values: only the fields of its kind, and the
    secret its kind (and Azure login) takes. Empty key fields: the server's own identity."""
    if kind == "aws":
        fields = {k: v[k] for k in ("access_key_id", "role_arn", "external_id")}
        secret = v["secret_access_key"]
    elif kind == "gcp":
        fields, secret = {}, v["gcp_key"]
    else:
        auth = v["azure_auth"]
        fields = {"auth": auth, "tenant_id": v["tenant_id"], "client_id": v["client_id"]}
        secret = {"secret": v["client_secret"], "certificate": v["certificate"]}.get(auth, "")
    return {"kind": kind, **{k: x for k, x in fields.items() if x}, "secret": secret}


def _secret_field(kind: str, azure_auth: str) -> str:
    if kind == "aws":
        return "secret_access_key"
    if kind == "gcp":
        return "gcp_key"
    return "certificate" if azure_auth == "certificate" else "client_secret"


def place_errors(errors: forms.Errors, kind: str, azure_auth: str) -> None:
    """The service's identity errors moved to the form's fields they name; one about the
    identity as a whole (what the cloud refused) stays at "identity"."""
    for field in [f for f in errors if f.startswith("identity.")]:
        name = field.removeprefix("identity.")
        target = {
            "secret": _secret_field(kind, azure_auth),
            "auth": "azure_auth",
            "kind": "identity",
        }.get(name, name)
        message = errors.pop(field)
        errors.setdefault(target, message)


def badge(identity: dict[str, Any] | None, now: datetime | None = None) -> dict[str, str] | None:
    """A cloud credential's token badge: its style (token-valid, token-alert or
    token-expired) and its words, which say it all without the colour; None for a static
    login."""
    if identity is None:
        return None
    token = identity["token"]
    if token["state"] is None or token["expires_at"] is None:
        return {"style": "token-expired", "text": "no token"}
    if token["state"] == "expired":
        return {"style": "token-expired", "text": "token expired"}
    left = (
        datetime.fromisoformat(token["expires_at"]) - (now or datetime.now(UTC))
    ).total_seconds()
    if token["state"] == "alert":
        cause = (token["last_error"] or {}).get("cause") or "unknown"
        return {
            "style": "token-alert",
            "text": f"refresh failing: {cause}, expires in {span(left)}",
        }
    return {"style": "token-valid", "text": f"token valid, expires in {span(left)}"}


def from_now(iso: str | None, now: datetime | None = None) -> str:
    """How far an ISO time is from now: in 5h 12m, 3m ago."""
    if not iso:
        return ""
    return relative((datetime.fromisoformat(iso) - (now or datetime.now(UTC))).total_seconds())
