"""How the server commands print: readable text by default, the API objects in JSON or YAML."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from pullkeeper.cli.common import table

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "yaml"]),
    default="text",
    show_default=True,
    help="Readable text, or the API objects as JSON or YAML.",
)


def emit(obj: Any, output: str) -> bool:
    """Print obj as JSON or YAML when asked; False means the caller prints text."""
    if output == "json":
        click.echo(json.dumps(obj, indent=2, ensure_ascii=False))
        return True
    if output == "yaml":
        # Loaded only for -o yaml: every command that talks to the server prints through here.
        import yaml  # noqa: PLC0415

        click.echo(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True), nl=False)
        return True
    return False


def text(value: Any) -> str:
    if value is None or value in ("", []):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def when(value: str | None) -> str:
    """An ISO timestamp from the server, to the second, in UTC."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.utcoffset() is not None:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def details(pairs: Sequence[tuple[str, Any]]) -> str:
    """`key:  value` lines, the values aligned."""
    width = max(len(k) for k, _ in pairs) + 2
    return "\n".join(f"{k + ':':<{width}}{text(v)}".rstrip() for k, v in pairs)


def more_footer(page: dict[str, Any], offset: int, cursor: str | None = None) -> None:
    """On stderr, when a list page is not the last: where it is and how to go on."""
    shown, after = len(page["items"]), page.get("next")
    if not shown or not after:
        return
    where = f"{shown}" if cursor else f"{offset + 1}-{offset + shown}"
    click.echo(
        f"({where} of {page['total']}; --cursor {after} shows the next, --all every one)",
        err=True,
    )


def rows_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return empty
    return table(headers, [[text(c) for c in r] for r in rows])
