"""The web forms' cloud identity (web/cloud_identity.py): the API's `identity` made from
the typed fields, the service's errors moved to the fields they name, the badge's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pullkeeper.web.cloud_identity import badge, forget_secrets, identity_body, place_errors

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TYPED = {
    "access_key_id": "AKIAPULLER0000000001",
    "secret_access_key": "aws-secret",
    "role_arn": "",
    "external_id": "",
    "gcp_key": "",
    "azure_auth": "certificate",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "",
    "client_secret": "typed-then-switched",
    "certificate": "-----BEGIN PRIVATE KEY-----",
}


def test_the_identity_holds_only_its_kinds_fields_and_secret() -> None:
    assert identity_body("aws", TYPED) == {
        "kind": "aws",
        "access_key_id": "AKIAPULLER0000000001",
        "secret": "aws-secret",
    }
    # No key: the server's own identity.
    assert identity_body("gcp", TYPED) == {"kind": "gcp", "secret": ""}
    # The secret of the chosen Azure sign-in only.
    assert identity_body("azure", TYPED) == {
        "kind": "azure",
        "auth": "certificate",
        "tenant_id": "contoso.onmicrosoft.com",
        "secret": "-----BEGIN PRIVATE KEY-----",
    }
    assert identity_body("azure", TYPED | {"azure_auth": "workload"})["secret"] == ""


def test_errors_move_to_the_fields_they_name() -> None:
    errors = {"identity.secret": "s", "identity.auth": "a", "identity.kind": "k", "name": "n"}
    place_errors(errors, "azure", "certificate")
    assert errors == {"certificate": "s", "azure_auth": "a", "identity": "k", "name": "n"}
    errors = {"identity.secret": "s", "identity.role_arn": "r", "identity": "refused"}
    place_errors(errors, "aws", "secret")
    assert errors == {"secret_access_key": "s", "role_arn": "r", "identity": "refused"}


def test_secrets_are_forgotten() -> None:
    values: dict[str, Any] = TYPED | {"password": "pw", "name": "kept"}
    forget_secrets(values)
    assert [k for k, v in values.items() if v and k not in ("name",)] == [
        "access_key_id",
        "azure_auth",
        "tenant_id",
    ]


def token(state: str | None, expires_in: timedelta, cause: str | None = None) -> Any:
    return {
        "token": {
            "state": state,
            "expires_at": (NOW + expires_in).isoformat(),
            "last_error": {"cause": cause, "message": "m"} if cause else None,
        }
    }


def test_the_badge_says_the_state_in_words() -> None:
    assert badge(None) is None
    assert badge(token("valid", timedelta(hours=11, minutes=2)), NOW) == {
        "style": "token-valid",
        "text": "token valid, expires in 11h 2m",
    }
    assert badge(token("alert", timedelta(hours=2), "denied"), NOW) == {
        "style": "token-alert",
        "text": "refresh failing: denied, expires in 2h",
    }
    assert badge(token("expired", -timedelta(hours=1), "unreachable"), NOW) == {
        "style": "token-expired",
        "text": "token expired",
    }
