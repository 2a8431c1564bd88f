"""`pullkeeper image`: image references as the kubelet and docker read them."""

from __future__ import annotations

import sys
from typing import Any

import click

from pullkeeper.cli.common import echo_json, output_option
from pullkeeper.services import images


@click.group()
def image() -> None:
    """Image references."""


def _text(result: dict[str, Any]) -> str:
    head = str(result["input"])
    if "error" in result:
        return f"{head}\n  error     {result['error']}"
    rows = [(k, result[k]) for k in ("name", "domain", "path", "tag", "digest", "string")]
    rows.append(("familiar", result["familiar"]))
    return head + "\n" + "\n".join(f"  {k:<9} {'-' if v is None else v}" for k, v in rows)


@image.command("parse")
@click.argument("refs", nargs=-1, metavar="REF...")
@output_option
def parse(refs: tuple[str, ...], output: str) -> None:
    """Parse and normalize image references (distribution's ParseNormalizedNamed).

    With no REF, reads one reference per line from standard input (blank lines
    skipped). Exit status
    1 when any reference is invalid.
    """
    if not refs:
        text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        refs = tuple(line.strip() for line in text.splitlines() if line.strip())
    inputs = refs
    invalid = False
    for i, ref in enumerate(inputs):
        result = images.describe(ref)
        invalid |= "error" in result
        if output == "json":
            echo_json(result)
        else:
            click.echo(("\n" if i else "") + _text(result))
    if invalid:
        sys.exit(1)
