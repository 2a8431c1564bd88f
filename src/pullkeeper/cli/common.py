"""What every command shares: output choice, errors, warnings, tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from pullkeeper.core.go.json import replace_surrogates

EXIT_INVALID_INPUT = 2

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format: readable text, or JSON for machines.",
)

_F = TypeVar("_F", bound=Callable[..., Any])


def cursor_options(f: _F) -> _F:
    """--cursor and --all of a listing command (the server's `next` cursors)."""
    f = click.option(
        "--all", "every", is_flag=True, help="Every page from there on, fetched --limit at a time."
    )(f)
    return click.option(
        "--cursor",
        metavar="CURSOR",
        help="Start after the page that printed this cursor (cheaper than --offset deep down).",
    )(f)


class CLIError(click.ClickException):
    """Bad input: one line on stderr, exit status 2, no traceback."""

    exit_code = EXIT_INVALID_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def echo_json(obj: Any) -> None:
    # Input bytes that were not UTF-8 become U+FFFD, as Go's encoder writes them.
    click.echo(replace_surrogates(json.dumps(obj, ensure_ascii=False)))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]
    return "\n".join(lines)
