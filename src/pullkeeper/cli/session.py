"""The saved login: which server, and the API token to call it with.

`pullkeeper login` writes `$XDG_CONFIG_HOME/pullkeeper/session.json` (default
`~/.config/pullkeeper/`): mode 0600 in a 0700 directory, replaced atomically so
a reader never sees half a file. `--server`/`PULLKEEPER_SERVER` and
`--token`/`PULLKEEPER_TOKEN` override it; the saved token is only ever sent to
the server it was issued by.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.remote import Remote, normalize_url
from pullkeeper.paths import config_dir

SERVER_ENV = "PULLKEEPER_SERVER"
TOKEN_ENV = "PULLKEEPER_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass(frozen=True, slots=True)
class Session:
    server: str
    token: str
    username: str
    token_id: str | None = None  # None: the token was given, not issued by `login`
    expires_at: str | None = None


def session_path() -> Path:
    return config_dir() / "session.json"


def load() -> Session | None:
    path = session_path()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"cannot read the session file {path}: {e}") from None
    if stat.S_IMODE(mode) & 0o077:
        warn(f"{path} is readable by other users; run: chmod 600 {path}")
    try:
        data = json.loads(text)
        return Session(
            server=str(data["server"]),
            token=str(data["token"]),
            username=str(data.get("username", "")),
            token_id=data.get("token_id"),
            expires_at=data.get("expires_at"),
        )
    except (ValueError, KeyError, TypeError):
        raise CLIError(
            f"the session file {path} is damaged; run `pullkeeper login URL` again"
        ) from None


def save(session: Session) -> Path:
    """Write the session atomically: a 0600 temporary file in a 0700 directory, renamed."""
    directory, path = config_dir(), session_path()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(directory.stat().st_mode) != 0o700:
            directory.chmod(0o700)
        fd, tmp = tempfile.mkstemp(prefix=".session-", suffix=".tmp", dir=directory)
    except OSError as e:
        raise CLIError(f"cannot write the session file {path}: {e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp made it 0600
            json.dump(asdict(session), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CLIError(f"cannot write the session file {path}: {e}") from None
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def remove() -> bool:
    try:
        session_path().unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CLIError(f"cannot remove the session file {session_path()}: {e}") from None
    return True


# --------------------------------------------------------------------------- connecting


def connect(server: str | None, token: str | None) -> Remote:
    """A client for the chosen server with the chosen token; 'not logged in' otherwise."""
    saved = load()
    if server:
        url = normalize_url(server)
    elif saved is not None:
        url = saved.server
    else:
        raise CLIError(
            f"not logged in: run `pullkeeper login URL` first, or set {SERVER_ENV} and {TOKEN_ENV}"
        )
    if not token:
        if saved is None or saved.server != url:
            raise CLIError(
                f"not logged in to {url}: run `pullkeeper login {url}` first, or set {TOKEN_ENV}"
            )
        token = saved.token
    return Remote(url, token)


def server_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--token",
        envvar=TOKEN_ENV,
        show_envvar=True,
        metavar="TOKEN",
        help="API token to use instead of the saved login's (prefer the environment "
        "variable: a flag shows in the process list).",
    )(f)
    f = click.option(
        "--server",
        envvar=SERVER_ENV,
        show_envvar=True,
        metavar="URL",
        help="Server to talk to instead of the saved login's.",
    )(f)
    return f


def with_api(f: Callable[..., None]) -> Callable[..., None]:
    """A command that calls the server: adds --server/--token and passes `api` first."""

    @server_options
    @functools.wraps(f)
    def command(*args: Any, server: str | None, token: str | None, **kwargs: Any) -> None:
        with connect(server, token) as api:
            f(api, *args, **kwargs)

    return command


# --------------------------------------------------------------------------- secrets in


def read_stdin_secret(what: str) -> str:
    """A password or token from standard input; one trailing newline is not part of it."""
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CLIError(f"the {what} on standard input is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise CLIError(f"the {what} on standard input is empty")
    return text


@contextlib.contextmanager
def _no_traceback_on_abort() -> Iterator[None]:
    try:
        yield
    except (EOFError, KeyboardInterrupt, click.Abort):
        raise CLIError("no password given") from None


def prompt_secret(what: str, *, confirm: bool = False, flag: str = "--password-stdin") -> str:
    """Ask on the terminal with the input hidden; refuse when there is no terminal."""
    if not sys.stdin.isatty():
        raise CLIError(f"no terminal to ask for the {what}: pipe it in with {flag}")
    with _no_traceback_on_abort():
        text: str = click.prompt(
            what[0].upper() + what[1:],
            hide_input=True,
            confirmation_prompt=confirm,
            err=True,
        )
    if not text:
        raise CLIError(f"the {what} is empty")
    return text
