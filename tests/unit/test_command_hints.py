"""The commands that messages and pages name (in backquotes or <code>) exist: a hint that
names `pullkeeper cluster add` sends a newcomer to an error."""

from __future__ import annotations

import re
from pathlib import Path

import click

from pullkeeper.cli.main import cli

SOURCES = Path(__file__).resolve().parents[2] / "src" / "pullkeeper"
NAMED = re.compile(r"(?:<code>|`)pullkeeper ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")


def _named() -> set[tuple[str, str | None]]:
    found: set[tuple[str, str | None]] = set()
    for path in [*SOURCES.rglob("*.py"), *SOURCES.rglob("*.html")]:
        for m in NAMED.finditer(path.read_text()):
            found.add((m.group(1), m.group(2)))
    return found


def test_every_command_a_message_or_page_names_exists() -> None:
    named = _named()
    assert ("cluster", "create") in named  # the scan finds what it looks for
    ctx = click.Context(cli)
    wrong = []
    for word, sub in sorted(named, key=str):
        command = cli.get_command(ctx, word)
        if command is None:
            wrong.append(f"pullkeeper {word}")
        elif (
            sub
            and isinstance(command, click.Group)
            and command.get_command(click.Context(command, parent=ctx), sub) is None
        ):
            wrong.append(f"pullkeeper {word} {sub}")
    assert not wrong, f"named but not commands: {wrong}"
