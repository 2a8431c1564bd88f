"""Edit a server object as YAML in an editor; it is written back only if nobody changed it since.

`pullkeeper cluster|project|credential|policy edit` without change flags opens
the object's editable fields in $VISUAL or $EDITOR (click.edit). The fields
changed are sent with If-Match, the ETag of the GET the text was made from, so
a change someone else saved meanwhile is never overwritten: the server answers
412 instead. When the write fails, for that or any other reason, the edited
text is kept in a file and the error says where: nothing typed is lost.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.remote import Remote, RemoteError

PRECONDITION_FAILED = 412


def available() -> bool:
    """Whether an editor can be opened: one is named, or a terminal is there to run one in."""
    named = any(os.environ.get(v) for v in ("VISUAL", "EDITOR"))
    return named or (sys.stdin.isatty() and sys.stdout.isatty())


def require(options: str, message: str = "") -> None:
    """Refuse an edit without options where no editor can be opened."""
    if not available():
        raise CLIError(
            message
            or f"nothing to change: give {options}, or set EDITOR to edit it as YAML in an editor"
        )


@dataclass(frozen=True)
class Edit:
    """What to edit: the object's API path, its fields that can change, and how to say it."""

    path: str
    what: str  # "cluster prod"
    again: str  # the command that edits it again
    fields: Sequence[str]
    method: str = "PATCH"
    note: str = ""  # more comment lines for the top of the text


def run(
    api: Remote,
    path: str,
    what: str,
    command: Sequence[str],
    fields: Sequence[str],
    *,
    method: str = "PATCH",
    note: str = "",
    complete: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any] | None:
    """The object at `path` edited and written back, or None (said) when nothing changed.

    `command` is the `pullkeeper ...` command that edits it again, for the error that keeps
    the text.
    """
    again = shlex.join(["pullkeeper", *command])
    edited = edit(api, Edit(path, what, again, fields, method, note), complete)
    if edited is None:
        click.echo(f"{what}: nothing changed", err=True)
    return edited


def edit(
    api: Remote, e: Edit, complete: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any] | None:
    """The object as written, or None when nothing was changed.

    `complete` may add to the changes (a password asked for) or refuse them (CLIError).
    """
    current, tag = api.get_tagged(e.path)
    if tag is None:
        warn(
            f"the server sends no version of {e.what}, so a change someone else saves "
            "meanwhile would be overwritten; upgrade the server"
        )
    shown = {f: current.get(f) for f in e.fields}
    text = _document(e, shown)
    edited = click.edit(text, extension=".yaml", require_save=True)
    if edited is None or edited == text:
        return None
    try:
        changes = _changes(e, shown, edited)
        if not changes:
            return None
        if complete is not None:
            complete(changes)
        result: dict[str, Any] = api.write(e.method, e.path, changes, tag)
    except CLIError as err:
        raise _kept(err, e, edited) from None
    return result


def _document(e: Edit, shown: dict[str, Any]) -> str:
    # Loaded only by the edit commands, not by the others of the modules that import this one.
    import yaml  # noqa: PLC0415

    lines = [
        f"# Edit {e.what}, then save and quit. What you change is written back, unless",
        "# someone else changes it before you save: then nothing is, and your text is kept.",
        "# Lines starting with # are ignored; an unchanged or empty text changes nothing.",
        *(f"# {line}" for line in e.note.splitlines()),
    ]
    body = yaml.safe_dump(shown, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "\n".join(lines) + "\n" + body


def _changes(e: Edit, shown: dict[str, Any], edited: str) -> dict[str, Any]:
    # Loaded only by the edit commands, as in _document.
    import yaml  # noqa: PLC0415

    try:
        doc = yaml.safe_load(edited)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "it cannot be read"
        raise CLIError(f"the edited text is not YAML{where}: {problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise CLIError("the edited text must be `field: value` lines, as it was given")
    unknown = [str(k) for k in doc if k not in e.fields]
    if unknown:
        raise CLIError(
            f"{unknown[0]!r} is not a field of {e.what} that can be edited; "
            f"the fields are {', '.join(e.fields)}"
        )
    return {k: v for k, v in doc.items() if v != shown[k]}


def _kept(err: CLIError, e: Edit, edited: str) -> CLIError:
    """The error again, saying where the edited text now is (a private file of its own)."""
    fd, path = tempfile.mkstemp(prefix="pullkeeper-edit-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(edited)
    status = err.status if isinstance(err, RemoteError) else None
    if status == PRECONDITION_FAILED:
        message = (
            f"{e.what} was changed by someone else while you edited it, so nothing was "
            f"saved; your edited text is in {path}: run `{e.again}` and make your changes "
            "again on what is there now"
        )
    else:
        message = f"{err.message}; your edited text is in {path}"
    if isinstance(err, RemoteError):
        return type(err)(message, status)  # the same exit status
    return CLIError(message)
