"""`pullkeeper secret import` of configs whose credentials live in a real credential helper:
docker-credential-pass over `pass` and a throwaway GnuPG key."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    REGISTRY_PASSWORD,
    Registry,
    assert_one_line_error,
    b64,
    isolated_env,
    payload_of,
    pk,
    pk_ok,
    require,
    run,
)

pytestmark = pytest.mark.integration

OTHER_SERVER = "other.example.com:5000"
OTHER_USER = "robot$other"
OTHER_SECRET = "other-s3cret:with&<>chars"


@pytest.fixture(scope="session")
def gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A passphrase-less GnuPG key in a temporary GNUPGHOME; its agent stopped at the end."""
    why = "the credential-helper tests"
    require("gpg", why)
    require("gpgconf", why)
    require("pass", why)
    require("docker-credential-pass", why)
    base = tmp_path_factory.mktemp("gpg")
    home = base / "g"
    home.mkdir(mode=0o700)
    env = isolated_env(base / "home", {"GNUPGHOME": str(home)})
    made = run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "pullkeeper integration <pullkeeper@example.invalid>",
            "default",
            "default",
            "never",
        ],
        env=env,
    )
    assert made.returncode == 0, made.describe()
    listed = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env)
    assert listed.returncode == 0, listed.describe()
    fingerprints = [
        line.split(":")[9] for line in listed.stdout.splitlines() if line.startswith("fpr:")
    ]
    assert fingerprints, listed.describe()
    env["PULLKEEPER_TEST_GPG_KEY"] = fingerprints[0]
    try:
        yield env
    finally:
        # Stops the gpg-agent of this GNUPGHOME only (it was started for these tests).
        run(["gpgconf", "--kill", "gpg-agent"], env=env)


@pytest.fixture
def pass_env(gnupg_home: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A fresh, initialised password store for one test."""
    env = dict(gnupg_home)
    env["PASSWORD_STORE_DIR"] = str(tmp_path / "password-store")
    init = run(["pass", "init", env.pop("PULLKEEPER_TEST_GPG_KEY")], env=env)
    assert init.returncode == 0, init.describe()
    return env


def helper_store(env: dict[str, str], server: str, username: str, secret: str) -> None:
    body = json.dumps({"ServerURL": server, "Username": username, "Secret": secret})
    stored = run(["docker-credential-pass", "store"], stdin=body, env=env)
    assert stored.returncode == 0, stored.describe()
    # The helper really holds it: its own `get` gives it back.
    got = run(["docker-credential-pass", "get"], stdin=server, env=env)
    assert got.returncode == 0, got.describe()
    assert got.json() == {"ServerURL": server, "Username": username, "Secret": secret}


def import_and_decode(config: Path, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`secret import` (no warnings expected), then `secret decode --show-secrets -o json`."""
    imported = pk_ok("secret", "import", str(config), env=env)
    assert imported.err == b"", imported.describe()
    assert REGISTRY_PASSWORD not in imported.stdout
    assert OTHER_SECRET not in imported.stdout
    secret_path = config.with_name("secret.yaml")
    secret_path.write_bytes(imported.out)
    decoded = pk_ok("secret", "decode", str(secret_path), "--show-secrets", "-o", "json", env=env)
    return yaml.safe_load(imported.out), decoded.json()


def test_creds_store_pass(registry: Registry, pass_env: dict[str, str], tmp_path: Path) -> None:
    helper_store(pass_env, registry.host, registry.username, registry.password)
    helper_store(pass_env, OTHER_SERVER, OTHER_USER, OTHER_SECRET)
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    # As docker leaves it after `docker login` with a credsStore: the email (if any) stays in
    # the file, the credentials go to the helper.
    config.write_text(
        json.dumps({"auths": {registry.host: {"email": "ci@example.com"}}, "credsStore": "pass"})
    )
    secret, decoded = import_and_decode(config, pass_env)
    assert decoded == {
        "type": "kubernetes.io/dockerconfigjson",
        "auths": {
            registry.host: {
                "username": registry.username,
                "password": registry.password,
                "email": "ci@example.com",
            },
            OTHER_SERVER: {"username": OTHER_USER, "password": OTHER_SECRET, "email": ""},
        },
    }
    authfile = tmp_path / "auth.json"
    authfile.write_bytes(payload_of(secret))
    registry.assert_accepts(authfile)


def test_cred_helpers_pass(registry: Registry, pass_env: dict[str, str], tmp_path: Path) -> None:
    helper_store(pass_env, registry.host, registry.username, registry.password)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {"static.example.com": {"auth": b64("static-user:static-pw")}},
                "credHelpers": {registry.host: "pass"},
            }
        )
    )
    secret, decoded = import_and_decode(config, pass_env)
    assert decoded == {
        "type": "kubernetes.io/dockerconfigjson",
        "auths": {
            registry.host: {
                "username": registry.username,
                "password": registry.password,
                "email": "",
            },
            "static.example.com": {
                "username": "static-user",
                "password": "static-pw",
                "email": "",
            },
        },
    }
    authfile = tmp_path / "auth.json"
    authfile.write_bytes(payload_of(secret))
    registry.assert_accepts(authfile)


def test_wrong_password_in_the_helper_is_refused_by_the_registry(
    registry: Registry, pass_env: dict[str, str], tmp_path: Path
) -> None:
    helper_store(pass_env, registry.host, registry.username, "not-the-password")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {registry.host: "pass"}}))
    secret, decoded = import_and_decode(config, pass_env)
    assert decoded["auths"] == {
        registry.host: {"username": registry.username, "password": "not-the-password", "email": ""}
    }
    authfile = tmp_path / "auth.json"
    authfile.write_bytes(payload_of(secret))
    registry.assert_refuses(authfile)


def test_cred_helper_holding_nothing_for_a_server_is_skipped(
    registry: Registry, pass_env: dict[str, str], tmp_path: Path
) -> None:
    """A credHelpers server the helper holds no credentials for must not become an entry.

    Debian's docker-credential-pass (0.6.4) answers `get` for an unknown server with exit 0
    and empty Username/Secret. An entry with no user name and no password is what `secret
    import` skips (with a warning) for plain `auths`; here it must be skipped the same way,
    not written to the Secret as {"auth": base64(":")}.
    """
    helper_store(pass_env, registry.host, registry.username, registry.password)
    missing = "missing.example.com"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {registry.host: "pass", missing: "pass"}}))
    imported = pk_ok("secret", "import", str(config), "-o", "json", env=pass_env)
    entries = json.loads(payload_of(imported.json()))["auths"]
    assert missing not in entries, (
        f"an empty credential was imported for {missing}: {entries.get(missing)!r}"
    )
    assert set(entries) == {registry.host}
    warnings = [line for line in imported.stderr.splitlines() if line.startswith("warning:")]
    assert any(missing in line for line in warnings), imported.describe()


def test_creds_store_with_an_empty_store_is_an_error(
    registry: Registry, pass_env: dict[str, str], tmp_path: Path
) -> None:
    """The import really asks the helper: with another (empty) store the answer changes."""
    helper_store(pass_env, registry.host, registry.username, registry.password)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "pass"}))
    other_env = dict(pass_env)
    other_env["PASSWORD_STORE_DIR"] = str(tmp_path / "empty-store")
    os.makedirs(other_env["PASSWORD_STORE_DIR"])
    result = pk("secret", "import", str(config), env=other_env)
    line = assert_one_line_error(result)
    assert str(config) in line, result.describe()
    assert registry.password not in result.stdout + result.stderr


def test_identity_token_in_the_helper_is_skipped(
    registry: Registry, pass_env: dict[str, str], tmp_path: Path
) -> None:
    """Helpers keep an OAuth identity token under the user name "<token>"; the kubelet
    cannot use one, so the import leaves it out and says so, without printing it."""
    helper_store(pass_env, registry.host, registry.username, registry.password)
    token = "identity-token-Hh7-never-print"
    helper_store(pass_env, OTHER_SERVER, "<token>", token)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "pass"}))
    imported = pk_ok("secret", "import", str(config), "-o", "json", env=pass_env)
    entries = json.loads(payload_of(imported.json()))["auths"]
    assert set(entries) == {registry.host}
    warnings = imported.stderr.splitlines()
    assert len(warnings) == 1, imported.describe()
    assert warnings[0].startswith("warning:")
    assert OTHER_SERVER in warnings[0]
    assert "identity token" in warnings[0]
    assert token not in imported.stdout + imported.stderr


@pytest.mark.parametrize(
    "config",
    [
        {"credsStore": "nosuchhelper"},
        {"auths": {"r.example.com": {}}, "credsStore": "nosuchhelper"},
        {"credHelpers": {"r.example.com": "nosuchhelper"}},
    ],
    ids=["credsStore", "credsStore-with-auths", "credHelpers"],
)
def test_missing_helper(tmp_path: Path, config: dict[str, object]) -> None:
    env = isolated_env(tmp_path / "home")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = pk("secret", "import", str(path), env=env)
    line = assert_one_line_error(result)
    assert result.out == b""
    assert line.startswith("error:")
    assert "docker-credential-nosuchhelper" in line, result.describe()


def test_check_says_whose_order_the_helper_comes_first_in(
    registry: Registry, pass_env: dict[str, str], tmp_path: Path
) -> None:
    """Without --config, `check` asks docker's helper first (docker's order); the kubelet
    never runs helpers, and its order is the file's entries' only."""
    helper_store(pass_env, registry.host, registry.username, registry.password)
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps(
            {
                "auths": {registry.host: {"auth": b64(f"{registry.username}:wrong-pw-Xq7")}},
                "credHelpers": {registry.host: "pass"},
            }
        )
    )
    ca = str(registry.cert_dir / "ca.crt")
    env = {**pass_env, "DOCKER_CONFIG": str(config.parent)}  # docker's own variable
    result = pk("check", registry.image, "--ca-file", ca, "--all", env=env)
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[1] == (
        "credentials: docker's credential helper first, as docker asks it (the kubelet never "
        "runs helpers), then config.json's entries in the order the kubelet tries them:"
    )
    assert lines[2] == f"  1. docker-credential-pass ({registry.username}@{registry.host}): works"
    assert lines[3].startswith(f"  2. {config} ({registry.username}@{registry.host}): fails: ")
    assert "wrong-pw-Xq7" not in result.stdout + result.stderr
