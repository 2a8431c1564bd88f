"""How the CLI words a cloud credential's token: durations, the listing's column, and the
lines of `credential show` (cli/cloud_identity.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pullkeeper.cli.cloud_identity import identity_details, token_column
from pullkeeper.core.durations import span

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (30, "under a minute"),
        (12 * 60 + 5, "12m"),
        (5 * 3600 + 12 * 60, "5h 12m"),
        (11 * 3600, "11h"),
        (2 * 86400 + 3 * 3600 + 59, "2d 3h"),
        (-(2 * 3600 + 60), "2h 1m"),
    ],
)
def test_span(seconds: float, words: str) -> None:
    assert span(seconds) == words


def cloud(state: str | None, expires_in: timedelta, error: dict[str, str] | None = None) -> Any:
    return {
        "identity": {
            "kind": "aws",
            "access_key_id": "AKIAPULLER0000000001",
            "token": {
                "state": state,
                "issued_at": (NOW - timedelta(hours=1)).isoformat(),
                "expires_at": (NOW + expires_in).isoformat(),
                "refresh_at": (NOW + timedelta(hours=4, minutes=30)).isoformat(),
                "failures": 3 if error else 0,
                "last_error": error,
            },
        }
    }


def test_the_token_column() -> None:
    assert token_column({"identity": None}, NOW) == ""
    assert token_column(cloud("valid", timedelta(hours=11, minutes=40)), NOW) == "token valid 11h"
    assert token_column(cloud("alert", timedelta(hours=2, minutes=5)), NOW) == "ALERT 2h"
    assert token_column(cloud("alert", timedelta(seconds=20)), NOW) == "ALERT <1m"
    assert token_column(cloud("expired", -timedelta(hours=1)), NOW) == "expired"


def test_show_lines_say_times_absolute_and_relative_and_the_last_error() -> None:
    error = {"cause": "denied", "message": "grant ecr:GetAuthorizationToken"}
    lines = dict(identity_details(cloud("alert", timedelta(hours=2, minutes=5), error), NOW))
    assert lines["identity"] == "aws (access_key_id AKIAPULLER0000000001)"
    assert lines["token"].startswith("ALERT")
    assert lines["expires"] == "2026-12-03T14:05:00Z (in 2h 5m)"
    assert lines["last refresh"] == "2026-12-03T11:00:00Z (1h ago)"
    assert lines["next refresh"] == "2026-12-03T16:30:00Z (in 4h 30m)"
    assert lines["failures"] == "3"
    assert lines["last error"] == "denied: grant ecr:GetAuthorizationToken"
    assert identity_details({"identity": None}, NOW) == []
