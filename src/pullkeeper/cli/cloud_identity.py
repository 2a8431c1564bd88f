"""The cloud identity options of `credential create` and `credential edit`, and how a
credential's identity and its token are printed.

An ECR, GCR or ACR credential may log in with a cloud identity instead of a password: the
server makes short-lived registry tokens from it. Its secret (an AWS secret access key, a
Google service-account key, an Azure client secret or certificate) is read only from
standard input, a file or a hidden prompt, never from a flag, like a password.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from pullkeeper.cli.common import CLIError
from pullkeeper.cli.render import when
from pullkeeper.cli.session import prompt_secret, read_stdin_secret
from pullkeeper.core.durations import relative, span

__all__ = [
    "identity_details",
    "identity_from",
    "identity_options",
    "token_column",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_AZURE_AUTH = ("secret", "certificate", "workload", "default")

# Each option's cloud, its flag and its click settings, in the order --help lists them.
_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "aws",
        "--aws-access-key-id",
        {
            "metavar": "ID",
            "help": "ECR: log in with this AWS access key (its secret from "
            "--aws-secret-access-key-stdin, or asked on a terminal).",
        },
    ),
    (
        "aws",
        "--aws-secret-access-key-stdin",
        {"is_flag": True, "help": "ECR: read the access key's secret from stdin."},
    ),
    ("aws", "--aws-role-arn", {"metavar": "ARN", "help": "ECR: a role to assume."}),
    ("aws", "--aws-external-id", {"metavar": "ID", "help": "ECR: the role's external id."}),
    (
        "aws",
        "--aws-default-chain",
        {
            "is_flag": True,
            "help": "ECR: no key: the server's own AWS identity (its SDK default chain).",
        },
    ),
    (
        "gcp",
        "--gcp-key-file",
        {
            "type": _FILE,
            "metavar": "FILE",
            "help": "GCR / Artifact Registry: log in with this service-account JSON key file.",
        },
    ),
    (
        "gcp",
        "--gcp-default",
        {
            "is_flag": True,
            "help": "GCR / Artifact Registry: no key: the server's own Google identity.",
        },
    ),
    (
        "azure",
        "--azure-auth",
        {
            "type": click.Choice(_AZURE_AUTH),
            "help": "ACR: how to log in to Microsoft Entra: a service principal's client "
            "secret or certificate, or the server's own identity (workload identity, default "
            "chain). Implied by --azure-secret-stdin and --azure-certificate-file.",
        },
    ),
    ("azure", "--azure-tenant", {"metavar": "TENANT", "help": "ACR: the tenant's id or domain."}),
    ("azure", "--azure-client-id", {"metavar": "ID", "help": "ACR: the client (application) id."}),
    (
        "azure",
        "--azure-secret-stdin",
        {"is_flag": True, "help": "ACR: read the service principal's client secret from stdin."},
    ),
    (
        "azure",
        "--azure-certificate-file",
        {
            "type": _FILE,
            "metavar": "FILE",
            "help": "ACR: the service principal's certificate, PEM with its private key.",
        },
    ),
)


def _name(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def identity_options(f: _F) -> _F:
    """Adds the identity options to a command; it takes them as keyword arguments, passed
    on together to identity_from."""
    for _, flag, settings in reversed(_OPTIONS):
        f = click.option(flag, **settings)(f)
    return f


def _given(options: dict[str, Any]) -> list[str]:
    """The clouds whose options were given."""
    return sorted({cloud for cloud, flag, _ in _OPTIONS if options.get(_name(flag))})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def identity_from(
    options: dict[str, Any], password_options: dict[str, Any]
) -> dict[str, str] | None:
    """The API's `identity` from the options given (None: none given), its secret read from
    stdin, a file or the terminal; CLIError when they do not make one identity, or are mixed
    with a password (`password_options`: the password options given, by parameter name)."""
    clouds = _given(options)
    if not clouds:
        return None
    if len(clouds) > 1:
        raise CLIError(
            "give one cloud's identity options, not " + " and ".join(clouds) + "'s together"
        )
    mixed = [_flag(name) for name, value in password_options.items() if value]
    if mixed:
        raise CLIError(
            "a credential logs in with a password or with a cloud identity, not both: "
            f"drop {' and '.join(mixed)} (a cloud identity's tokens make the user name and "
            "password)"
        )
    return {"aws": _aws, "gcp": _gcp, "azure": _azure}[clouds[0]](options)


def _aws(o: dict[str, Any]) -> dict[str, str]:
    key_id: str | None = o["aws_access_key_id"]
    if o["aws_default_chain"] and (key_id or o["aws_secret_access_key_stdin"]):
        raise CLIError(
            "give either --aws-access-key-id (its secret on stdin) or --aws-default-chain, not both"
        )
    if not key_id and not o["aws_default_chain"]:
        raise CLIError(
            "an AWS identity needs --aws-access-key-id (its secret with "
            "--aws-secret-access-key-stdin) or --aws-default-chain (the server's own)"
        )
    identity = {"kind": "aws"}
    if key_id:
        identity["access_key_id"] = key_id
        identity["secret"] = _secret(
            o["aws_secret_access_key_stdin"], "secret access key", "--aws-secret-access-key-stdin"
        )
    if o["aws_role_arn"]:
        identity["role_arn"] = o["aws_role_arn"]
    if o["aws_external_id"]:
        identity["external_id"] = o["aws_external_id"]
    return identity


def _gcp(o: dict[str, Any]) -> dict[str, str]:
    key_file: Path | None = o["gcp_key_file"]
    if key_file and o["gcp_default"]:
        raise CLIError("give either --gcp-key-file or --gcp-default, not both")
    if key_file is None:
        return {"kind": "gcp"}
    return {"kind": "gcp", "secret": _read_file(key_file, "service-account key")}


def _azure(o: dict[str, Any]) -> dict[str, str]:
    secret_stdin: bool = o["azure_secret_stdin"]
    cert_file: Path | None = o["azure_certificate_file"]
    if secret_stdin and cert_file:
        raise CLIError("give either --azure-secret-stdin or --azure-certificate-file, not both")
    implied = "secret" if secret_stdin else "certificate" if cert_file else None
    auth: str | None = o["azure_auth"] or implied
    if auth is None:
        raise CLIError(
            "an Azure identity needs --azure-auth: secret or certificate (a service principal, "
            "with --azure-tenant and --azure-client-id), workload or default (the server's own)"
        )
    if implied and auth != implied:
        raise CLIError(
            f"--azure-auth {auth} takes no {'secret' if secret_stdin else 'certificate'}"
        )
    identity = {"kind": "azure", "auth": auth}
    if o["azure_tenant"]:
        identity["tenant_id"] = o["azure_tenant"]
    if o["azure_client_id"]:
        identity["client_id"] = o["azure_client_id"]
    if auth == "secret":
        identity["secret"] = _secret(secret_stdin, "client secret", "--azure-secret-stdin")
    elif auth == "certificate":
        if cert_file is None:
            raise CLIError("--azure-auth certificate needs --azure-certificate-file")
        identity["secret"] = _read_file(cert_file, "certificate")
    return identity


def _secret(stdin: bool, what: str, flag: str) -> str:
    if stdin:
        return read_stdin_secret(what)
    return prompt_secret(what, flag=flag)


def _read_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise CLIError(f"cannot read the {what} file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CLIError(f"the {what} file {path} is not UTF-8 text") from None
    if not text.strip():
        raise CLIError(f"the {what} file {path} is empty")
    return text


# --------------------------------------------------------------------------- printing


def _until(iso: str | None, now: datetime) -> str:
    """An ISO time and how far it is from now: 2026-12-03T21:00:00Z (in 5h 12m)."""
    if not iso:
        return "-"
    return f"{when(iso)} ({relative((datetime.fromisoformat(iso) - now).total_seconds())})"


def _now() -> datetime:
    return datetime.now(UTC)


def token_column(c: dict[str, Any], now: datetime | None = None) -> str:
    """A listing's word for a cloud credential's token ("" for a static login): token valid
    11h, ALERT 2h (refresh failing), expired."""
    identity = c.get("identity")
    if not identity:
        return ""
    token = identity["token"]
    if token["state"] is None or token["expires_at"] is None:
        return "no token"
    if token["state"] == "expired":
        return "expired"
    left = span((datetime.fromisoformat(token["expires_at"]) - (now or _now())).total_seconds())
    # The table cell holds one duration: its largest unit.
    left = left.split()[0] if left != "under a minute" else "<1m"
    return f"ALERT {left}" if token["state"] == "alert" else f"token valid {left}"


def identity_details(c: dict[str, Any], now: datetime | None = None) -> list[tuple[str, Any]]:
    """`credential show`'s lines for the identity and its token (none for a static login)."""
    identity = c.get("identity")
    if not identity:
        return []
    now = now or _now()
    token = identity["token"]
    fields = {k: v for k, v in identity.items() if k not in ("kind", "token")}
    shown = ", ".join(f"{k} {v}" for k, v in fields.items())
    error = token["last_error"]
    state = token["state"] or "no token"
    if state == "alert":
        state = "ALERT: the last refresh failed and the token expires soon"
    return [
        ("identity", f"{identity['kind']}" + (f" ({shown})" if shown else " (the server's own)")),
        ("token", state),
        ("expires", _until(token["expires_at"], now)),
        ("last refresh", _until(token["issued_at"], now)),
        ("next refresh", _until(token["refresh_at"], now)),
        ("failures", str(token["failures"] or 0)),
        ("last error", f"{error['cause']}: {error['message']}" if error else "-"),
    ]
