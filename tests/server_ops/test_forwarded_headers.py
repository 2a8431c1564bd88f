"""X-Forwarded-For and X-Forwarded-Proto at a real `pullkeeper serve` on 127.0.0.1: ignored
from every client unless it is one of `trusted_proxies`.

Believed from anyone local, they would let any local process reset the login throttle (its
key is the user name and the client's address) and choose the source the audit records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import assert_one_line_error, pk
from tests.server_ops import API, AUTH, Serve, free_port, ok

ATTEMPTS = 5  # login_attempts_per_minute's default


def _serve(tmp_path: Path, settings: str = "") -> Serve:
    extra: list[str] = []
    if settings:
        config = tmp_path / "pullkeeper.toml"
        config.write_text(settings)
        extra = ["--config", str(config)]
    serve = Serve(tmp_path / "data", extra=extra)
    serve.start()
    return serve


def _failed_logins(serve: Serve) -> list[int]:
    """Wrong passwords for admin, each claiming another client address."""
    return [
        httpx.post(
            f"{serve.url}{API}/login",
            json={"username": "admin", "password": "not-the-password"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
            timeout=10,
        ).status_code
        for i in range(1, ATTEMPTS + 3)
    ]


def _login_source(serve: Serve, forwarded: dict[str, str]) -> str:
    """Where the audit says a successful login came from."""
    with httpx.Client(base_url=serve.url + API, headers=AUTH, timeout=10) as c:
        ok(c.post("/users", json={"username": "carol", "password": "carols-password"}), 201)
        ok(
            c.post(
                "/login",
                json={"username": "carol", "password": "carols-password"},
                headers=forwarded,
            ),
            201,
        )
        events: list[dict[str, Any]] = ok(c.get("/audit", params={"action": "user.login"}))["items"]
    (event,) = [e for e in events if e["actor"] == "carol"]
    return str(event["source"])


FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_of_an_untrusted_client_are_ignored(tmp_path: Path) -> None:
    serve = _serve(tmp_path)
    try:
        # The throttle counts the connection's address: new X-Forwarded-For values reset nothing.
        assert _failed_logins(serve) == [401] * ATTEMPTS + [429, 429]
        assert _login_source(serve, FORWARDED) == "127.0.0.1"
        # Nor does X-Forwarded-Proto make the plain-HTTP page https (HSTS, Secure cookies).
        page = httpx.get(f"{serve.url}/login", headers=FORWARDED, timeout=10)
        assert page.status_code == 200
        assert "strict-transport-security" not in page.headers
    finally:
        serve.stop()


def test_forwarded_headers_of_a_trusted_proxy_are_believed(tmp_path: Path) -> None:
    serve = _serve(tmp_path, 'trusted_proxies = ["127.0.0.0/8"]\n')
    try:
        # Each attempt comes from the address the proxy names: each its own throttle.
        assert _failed_logins(serve) == [401] * (ATTEMPTS + 2)
        assert _login_source(serve, FORWARDED) == "203.0.113.9"
        page = httpx.get(f"{serve.url}/login", headers=FORWARDED, timeout=10)
        assert page.headers["strict-transport-security"] == "max-age=31536000"
    finally:
        serve.stop()


def test_a_proxy_that_is_no_address_is_one_line_of_error(tmp_path: Path) -> None:
    config = tmp_path / "pullkeeper.toml"
    config.write_text('trusted_proxies = ["10.0.0.0/8", "proxy.example.com"]\n')
    done = pk(
        "serve", "--data", str(tmp_path / "data"), "--port", str(free_port()),
        "--config", str(config),
    )  # fmt: skip
    message = assert_one_line_error(done)
    assert "trusted_proxies" in message and "'proxy.example.com' is not an IP address" in message
