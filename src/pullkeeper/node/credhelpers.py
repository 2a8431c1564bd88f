"""Docker credential helpers (`docker-credential-<name>`), through their stdin/stdout protocol.

`get` reads a server URL on stdin and writes `{"ServerURL","Username","Secret"}`;
`list` writes `{server: username}`. A helper reports an unknown server with
"credentials not found in native keychain" and a non-zero exit.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

__all__ = ["CredentialHelperError", "HelperCredentials", "get", "list_servers"]

_NOT_FOUND = "credentials not found in native keychain"
# Helpers store an OAuth identity token under this user name.
_TOKEN_USERNAME = "<token>"  # noqa: S105 - a marker, not a secret
_TIMEOUT = 30.0


class CredentialHelperError(Exception):
    """A helper that is missing, failed, or answered something that is not its protocol."""


@dataclass(frozen=True, slots=True)
class HelperCredentials:
    server: str
    username: str
    secret: str = field(repr=False)

    @property
    def is_identity_token(self) -> bool:
        return self.username == _TOKEN_USERNAME


def _program(helper: str) -> str:
    return f"docker-credential-{helper}"


def _run(helper: str, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
    program = _program(helper)
    try:
        return subprocess.run(
            [program, action],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise CredentialHelperError(
            f"the credential helper {program} is not installed (not found on PATH); "
            "install it, or log in again with it disabled so config.json holds the credentials"
        ) from None
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(
            f"{program} {action} did not answer within {_TIMEOUT:.0f}s "
            "(is it waiting for a password prompt or an unlocked keyring?)"
        ) from None


def _failure(helper: str, action: str, proc: subprocess.CompletedProcess[str]) -> str:
    said = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    reason = said[0] if said else f"exit status {proc.returncode}"
    return f"{_program(helper)} {action} failed: {reason}"


def get(helper: str, server: str) -> HelperCredentials | None:
    """The credentials a helper holds for server, or None when it holds none."""
    proc = _run(helper, "get", server)
    if proc.returncode != 0:
        if _NOT_FOUND in proc.stdout or _NOT_FOUND in proc.stderr:
            return None
        raise CredentialHelperError(_failure(helper, "get", proc))
    try:
        answer = json.loads(proc.stdout)
        username, secret = answer["Username"], answer["Secret"]
        if not isinstance(username, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise CredentialHelperError(
            f"{_program(helper)} get answered something other than "
            '{"ServerURL","Username","Secret"} JSON'
        ) from None
    if not username and not secret:
        # Some helpers (docker-credential-pass 0.6) answer an unknown server this way.
        return None
    return HelperCredentials(server, username, secret)


def list_servers(helper: str) -> dict[str, str]:
    """Every server the helper holds credentials for, with its user name."""
    proc = _run(helper, "list", "")
    if proc.returncode != 0:
        raise CredentialHelperError(_failure(helper, "list", proc))
    try:
        answer = json.loads(proc.stdout or "{}")
        if not isinstance(answer, dict):
            raise TypeError
    except (ValueError, TypeError):
        raise CredentialHelperError(
            f"{_program(helper)} list answered something other than a JSON object"
        ) from None
    return {str(k): str(v) for k, v in answer.items()}
