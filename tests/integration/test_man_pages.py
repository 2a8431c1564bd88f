"""scripts/man: a man page for `pullkeeper` and each of its commands, written from the click
commands, each one that groff renders without a warning and `man -l` shows."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest

from pullkeeper.cli.main import cli
from tests.kube.real import SCRIPT

from .conftest import isolated_env, require, run

pytestmark = pytest.mark.integration

MAN_SCRIPT = SCRIPT.parent / "man"


def command_paths(
    command: click.Command, path: tuple[str, ...], ctx: click.Context
) -> list[tuple[str, ...]]:
    """Every command path under command, itself included, as `--help` lists them."""
    paths = [path]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            if not sub.hidden:
                child = click.Context(sub, info_name=name, parent=ctx)
                paths += command_paths(sub, (*path, name), child)
    return paths


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("man")
    home = tmp_path_factory.mktemp("home")
    written = run([sys.executable, str(MAN_SCRIPT), str(target)], env=isolated_env(home))
    assert written.returncode == 0, written.describe()
    assert (
        written.stdout == f"scripts/man: wrote {len(list(target.iterdir()))} pages in {target}/\n"
    )
    return target


def test_every_command_has_a_page(pages: Path) -> None:
    ctx = click.Context(cli, info_name="pullkeeper")
    expected = {"-".join(("pullkeeper", *p)) + ".1" for p in command_paths(cli, (), ctx)}
    assert {"pullkeeper.1", "pullkeeper-secret-create-docker-registry.1"} <= expected
    assert {p.name for p in pages.iterdir()} == expected


def test_groff_renders_every_page_without_a_warning(pages: Path) -> None:
    groff = require("groff", "the man page tests")
    for page in sorted(pages.iterdir()):
        rendered = run([groff, "-man", "-Tutf8", "-ww", "-z", str(page)])
        assert rendered.returncode == 0, rendered.describe()
        assert rendered.stderr == "", rendered.describe()


def test_man_shows_a_commands_page_as_its_help_says(pages: Path, tmp_path: Path) -> None:
    man = require("man", "the man page tests")
    env = {**isolated_env(tmp_path / "home"), "MANWIDTH": "100"}
    page = pages / "pullkeeper-secret-create-docker-registry.1"
    shown = run([man, "-l", str(page)], env=env)
    assert shown.returncode == 0, shown.describe()
    text = shown.stdout
    sections = [line for line in text.splitlines() if line and not line[0].isspace()]
    assert sections[1:5] == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"], text
    assert "pullkeeper secret create docker-registry [OPTIONS] NAME" in text
    assert "The same Secret as `kubectl create secret docker-registry`, byte for byte." in text
    for option in ("--docker-server", "--password-stdin", "--label KEY=VALUE", "--annotation"):
        assert option in text, option
    # The top page lists the commands and points to theirs.
    top = run([man, "-l", str(pages / "pullkeeper.1")], env=env)
    assert "See pullkeeper-completion(1) for full documentation" in top.stdout
