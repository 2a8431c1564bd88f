"""`pullkeeper ... edit` in an editor, against a real `pullkeeper serve`: no lost updates.

The editor is a real program (EDITOR, run by the CLI as it would run vi): a small script
that edits the text, and that can first let another admin, with the real CLI, change the
same object while the first one is still "typing". That is the lost update replayed: the
first admin's save must be refused (the server's 412 on If-Match), the other admin's change
must stay, and the first admin's edited text must be kept in a file the error names.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import PULLKEEPER
from .test_cli_server import Cli, Server, User, start_server

pytestmark = pytest.mark.integration

ALICE_PASSWORD = "alice-edit-pw-1"  # throwaway test logins
BOB_PASSWORD = "bob-edit-pw-2"
QUAY_PASSWORD = "quay-edit-s3cret-3"

EDITOR_SCRIPT = """\
import json, os, shutil, subprocess, sys

path = sys.argv[1]
plan = json.loads(os.environ["EDIT_PLAN"])
shutil.copyfile(path, plan["seen"])
if plan.get("meanwhile"):
    subprocess.run(
        plan["meanwhile"]["args"], env=plan["meanwhile"]["env"], check=True, capture_output=True
    )
with open(path, encoding="utf-8") as f:
    text = f.read()
for old, new in plan["replace"]:
    assert old in text, (old, text)
    text = text.replace(old, new)
with open(path, "w", encoding="utf-8") as f:
    f.write(text)
"""


@dataclass
class Edits:
    cli: Cli
    alice: User
    bob: User
    editor: str
    base: Path

    def edit(
        self,
        *args: str,
        replace: list[tuple[str, str]],
        meanwhile: list[str] | None = None,
    ) -> tuple[Any, str]:
        """Run `pullkeeper ARGS` as alice with the editor script; (result, text she saw)."""
        seen = self.base / "seen.yaml"
        plan: dict[str, Any] = {"seen": str(seen), "replace": replace}
        if meanwhile:
            plan["meanwhile"] = {"args": [PULLKEEPER, *meanwhile], "env": self.bob.env}
        env = {"EDITOR": self.editor, "EDIT_PLAN": json.dumps(plan)}
        result = self.cli.run(self.alice, *args, env=env)
        return result, seen.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("pkserver"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def edits(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Edits:
    base = tmp_path_factory.mktemp("pkedit")
    cli = Cli(server, base)
    cli.secrets |= {server.admin_password, ALICE_PASSWORD, BOB_PASSWORD, QUAY_PASSWORD}
    admin = cli.user("admin")
    cli.login(admin, server.admin_password)
    for name, password in (("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)):
        cli.ok(admin, "user", "create", name, "--admin", "--password-stdin", stdin=password)
    alice, bob = cli.user("alice"), cli.user("bob")
    cli.login(alice, ALICE_PASSWORD)
    cli.login(bob, BOB_PASSWORD)
    script = base / "editor.py"
    script.write_text(EDITOR_SCRIPT, encoding="utf-8")
    return Edits(cli, alice, bob, f"{sys.executable} {script}", base)


@dataclass(frozen=True)
class Case:
    """One kind of object: made fresh, edited by alice in the editor, by bob meanwhile."""

    kind: str
    make: list[list[str]]  # commands (as alice) that make the object
    edit: list[str]  # alice's edit command, without options
    replace: tuple[str, str]  # alice's change to the text
    bob: list[str]  # bob's change, with options
    show: list[str]  # the command whose JSON shows the object
    field: str
    alices: Any  # the field as alice's edit leaves it
    bobs: Any  # the field as bob's leaves it


def _cases(n: int) -> list[Case]:
    c = f"c{n}"
    return [
        Case(
            "cluster",
            [["cluster", "create", c, "--description", "Production"]],
            ["cluster", "edit", c],
            ("description: Production", "description: Production, EU"),
            ["cluster", "edit", c, "--description", "bob's"],
            ["cluster", "show", c],
            "description",
            "Production, EU",
            "bob's",
        ),
        Case(
            "project",
            [
                ["cluster", "create", c],
                ["project", "create", "team", "--cluster", c, "--description", "Team A"],
            ],
            ["project", "edit", "team", "--cluster", c],
            ("description: Team A", "description: Team A and B"),
            ["project", "edit", "team", "--cluster", c, "--description", "bob's"],
            ["project", "show", "team", "--cluster", c],
            "description",
            "Team A and B",
            "bob's",
        ),
        Case(
            "credential",
            [
                ["cluster", "create", c],
                [
                    *("credential", "create", f"quay-{n}", "--cluster", c, "--scope", "cluster"),
                    *("--provider", "quay", "--username", "acme+bot", "--password-stdin"),
                    *("--description", "read-only robot"),
                ],
            ],
            ["credential", "edit", f"quay-{n}"],
            ("description: read-only robot", "description: pull robot"),
            ["credential", "edit", f"quay-{n}", "--description", "bob's"],
            ["credential", "show", f"quay-{n}"],
            "description",
            "pull robot",
            "bob's",
        ),
        Case(
            "policy",
            [["cluster", "create", c], ["policy", "set", "--cluster", c, "--allow", "quay.io"]],
            ["policy", "edit", "--cluster", c],
            ("- quay.io", "- quay.io\n- ghcr.io"),
            ["policy", "set", "--cluster", c, "--allow", "docker.io"],
            ["policy", "show", "--cluster", c],
            "allowlist",
            ["quay.io", "ghcr.io"],
            ["docker.io"],
        ),
    ]


CASES = {c.kind: c for c in _cases(0)}
_made = iter(range(1, 1000))


def _fresh(edits: Edits, kind: str) -> Case:
    """The case with objects of its own, made now."""
    case = next(c for c in _cases(next(_made)) if c.kind == kind)
    for command in case.make:
        stdin = QUAY_PASSWORD if "--password-stdin" in command else None
        edits.cli.ok(edits.alice, *command, stdin=stdin)
    return case


@pytest.mark.parametrize("kind", list(CASES))
def test_an_edit_in_the_editor_is_written_back(edits: Edits, kind: str) -> None:
    case = _fresh(edits, kind)
    result, seen = edits.edit(*case.edit, replace=[case.replace])
    assert result.returncode == 0, result.describe()
    assert seen.startswith("# Edit "), seen
    assert case.replace[0] in seen
    got = edits.cli.json(edits.alice, *case.show)
    assert got[case.field] == case.alices


@pytest.mark.parametrize("kind", list(CASES))
def test_a_change_saved_meanwhile_is_not_overwritten(edits: Edits, kind: str) -> None:
    case = _fresh(edits, kind)
    result, _ = edits.edit(*case.edit, replace=[case.replace], meanwhile=case.bob)
    line = _one_line_error(result)
    assert "was changed by someone else while you edited it, so nothing was saved" in line
    # Bob's change stays; nothing of alice's was written.
    assert edits.cli.json(edits.alice, *case.show)[case.field] == case.bobs
    # Alice's edited text is kept, in a private file, and the error says how to go on.
    kept = _kept_file(line)
    assert case.replace[1] in kept.read_text(encoding="utf-8")
    assert kept.stat().st_mode & 0o077 == 0
    assert "run `pullkeeper " + " ".join(case.edit) + "`" in line
    kept.unlink()

    # Edited again, on what is there now, it is saved.
    bobs_text = case.bob[-1]
    result, _ = edits.edit(*case.edit, replace=[(bobs_text, bobs_text + "x")])
    assert result.returncode == 0, result.describe()


def test_an_unchanged_text_changes_nothing(edits: Edits) -> None:
    case = _fresh(edits, "cluster")
    before = edits.cli.json(edits.alice, *case.show)
    result, _ = edits.edit(*case.edit, replace=[])
    assert result.returncode == 0, result.describe()
    assert result.stderr.endswith(": nothing changed\n"), result.describe()
    assert edits.cli.json(edits.alice, *case.show) == before


def test_a_refused_value_keeps_the_text_too(edits: Edits) -> None:
    case = _fresh(edits, "cluster")
    result, _ = edits.edit(*case.edit, replace=[("access: kubeconfig", "access: nowhere")])
    line = _one_line_error(result)
    assert line.startswith("error: access must be one of kubeconfig, in-cluster"), line
    kept = _kept_file(line)
    assert "access: nowhere" in kept.read_text(encoding="utf-8")
    kept.unlink()
    result, _ = edits.edit(*case.edit, replace=[("context: ''", "colour: blue")])
    line = _one_line_error(result)
    assert "'colour' is not a field of cluster" in line, line
    _kept_file(line).unlink()


def test_a_new_login_in_the_editor_needs_a_terminal_for_the_password(edits: Edits) -> None:
    case = _fresh(edits, "credential")
    result, _ = edits.edit(*case.edit, replace=[("username: acme+bot", "username: acme+new")])
    line = _one_line_error(result)
    assert "needs the password again" in line and "--password-stdin" in line, line
    _kept_file(line).unlink()
    assert edits.cli.json(edits.alice, *case.show)["username"] == "acme+bot"


def test_without_an_editor_edit_asks_for_options(edits: Edits) -> None:
    case = _fresh(edits, "cluster")
    line = edits.cli.fails(edits.alice, *case.edit)
    assert line.startswith("error: nothing to change: give --name"), line
    assert "set EDITOR" in line
    line = edits.cli.fails(edits.alice, "policy", "edit", "--cluster", case.edit[-1])
    assert "set EDITOR" in line and "policy set" in line, line


def _one_line_error(result: Any) -> str:
    assert result.returncode == 2, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.describe()
    assert result.out == b"", result.describe()
    line: str = lines[0]
    return line


def _kept_file(line: str) -> Path:
    match = re.search(r"your edited text is in (\S+?\.yaml)", line)
    assert match, line
    path = Path(match.group(1))
    assert path.is_file(), line
    assert os.path.basename(path).startswith("pullkeeper-edit-")
    return path
