"""The docs' ```console blocks: found, run in a shell, and compared with what they show.

Every console block is marked by an HTML comment on the line before it (invisible on the
site and on GitHub):

- `<!-- run: SESSION -->`: its commands run, in the order of the page, in SESSION's
  environment (tests/docs/test_examples.py sets each up: files, a server, a registry);
- `<!-- not run: WHY -->`: it cannot run here (a real cloud, a production cluster), and
  WHY says so.

A block is commands (`$ ...`, continued by a trailing backslash) each followed by the
output it shows. A `cat FILE` shows a file the example needs: the file is written with the
shown text before the block runs. The output is compared line by line, trailing spaces
aside, after what cannot repeat is put back to what the page shows: the session's
substitutions (a registry's real address for the page's, a temporary directory for
`/home/me`, this run's ids for those the page showed before), ids (32 hex digits), times,
content hashes and the editor's temporary file names. `...` on a line stands for any text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)```console\s*$")
MARK = re.compile(r"^\s*<!--\s*(?:run:\s*(?P<session>[\w-]+)|not run:\s*(?P<why>.*\S))\s*-->\s*$")
ID = re.compile(r"\b[0-9a-f]{32}\b")
TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
HMAC = re.compile(r"hmac-sha256:[0-9a-f]{64}")  # of the server's own key
EDIT_FILE = re.compile(r"pullkeeper-edit-\w+\.yaml")
CAT = re.compile(r"^cat ([\w.-]+)$")


@dataclass
class Command:
    line: int  # in the page, of the `$`
    text: str  # as typed, continuation lines joined
    expected: list[str] = field(default_factory=list)

    @property
    def output_line(self) -> int:
        """The page's line of the first line of output it shows."""
        return self.line + self.text.count("\n") + 1 if self.text else self.line


@dataclass
class Block:
    page: Path
    line: int  # of the fence
    session: str | None
    why: str | None
    commands: list[Command]
    indent: int = 0

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _mark(lines: list[str], fence: int) -> re.Match[str] | None:
    i = fence - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    return MARK.match(lines[i]) if i >= 0 else None


def _commands(body: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    continued = False
    for number, line in body:
        if continued:
            commands[-1].text += "\n" + line
        elif line.startswith("$ "):
            commands.append(Command(number, line[2:]))
        elif commands:
            commands[-1].expected.append(line)
        else:  # output before any command: a log excerpt, not an example to run
            commands.append(Command(number, "", [line]))
        continued = (line.startswith("$ ") or continued) and line.endswith("\\")
    return commands


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent = len(fence["indent"])
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [(n + 1, lines[n][indent:]) for n in range(i + 1, end)]
        mark = _mark(lines, i)
        found.append(
            Block(
                page,
                i + 1,
                mark["session"] if mark else None,
                mark["why"] if mark else None,
                _commands(body),
                indent,
            )
        )
        i = end + 1
    return found


def every_block() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


@dataclass
class Shell:
    """Where a session's commands run: a directory, an environment, and what the page
    writes differently from this run (page's text -> this run's)."""

    cwd: Path
    env: dict[str, str]
    subs: dict[str, str] = field(default_factory=dict)
    status: int = 0  # of the last command, for a following `echo $?`
    timeout: float = 120
    # Run before each block: what the page takes for granted there (logged in, say).
    prepare: Callable[[Shell, Block], None] | None = None

    def run(self, command: str) -> str:
        text = command
        for page, actual in self.subs.items():
            text = text.replace(page, actual)
        done = subprocess.run(
            ["bash", "-c", f"(exit {self.status}); {text}"],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        self.status = done.returncode
        return done.stdout

    def as_page(self, output: str) -> str:
        # Longest first, so a directory's path goes before a prefix of it.
        for page, actual in sorted(self.subs.items(), key=lambda s: -len(s[1])):
            output = output.replace(actual, page)
        return output

    def until_shown(self, block: Block, seconds: float = 60) -> None:
        """For a page that looks at what a background loop (the sync) writes: run the
        block's commands again until they print what it shows, or `seconds` have passed
        (then the block's own run says what they print)."""
        status = self.status
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            outputs = [self.as_page(self.run(c.text)) for c in block.commands]
            if all(
                differences(c.expected, o) is None
                for c, o in zip(block.commands, outputs, strict=True)
            ):
                break
            time.sleep(0.5)
        self.status = status

    def learn(self, expected: list[str], output: str) -> None:
        """Ids this run made where the page shows others: later commands that name the
        page's id get this run's (`node-token revoke prod ID` after `create`)."""
        for want, got in zip(expected, output.splitlines(), strict=False):
            if not _pattern(want).fullmatch(_normal(got)):
                continue  # another row: its ids are another object's
            for page, actual in zip(ID.findall(want), ID.findall(got), strict=False):
                if page not in self.subs and actual not in self.subs.values():
                    self.subs[page] = actual

    def write_shown_files(self, block: Block) -> None:
        for command in block.commands:
            shown = CAT.match(command.text)
            if shown:
                (self.cwd / shown[1]).write_text("\n".join(command.expected) + "\n")


def _normal(line: str) -> str:
    line = EDIT_FILE.sub("pullkeeper-edit-<tmp>.yaml", line.rstrip())
    line = HMAC.sub("hmac-sha256:<hash>", line)
    return TIME.sub("<time>", ID.sub("<id>", line))


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in _normal(line).split("...")))


def differences(expected: list[str], actual: str) -> str | None:
    """None when the output is what the page shows; else both, for the failure message."""
    got = [_normal(line) for line in actual.rstrip("\n").splitlines()]
    want = list(expected)
    while want and not want[-1].strip():
        want.pop()
    same = len(got) == len(want) and all(
        _pattern(w).fullmatch(g) for w, g in zip(want, got, strict=True)
    )
    if same:
        return None
    return "the page shows:\n" + "\n".join(want) + "\n\nthe command printed:\n" + "\n".join(got)


def rewrite(page: Path, fixes: list[tuple[Command, int, str]]) -> None:
    """Put what the commands printed in the page, in place of what it showed: each fix is
    a command, its block's indent, and the output (already as the page writes it)."""
    lines = page.read_text().split("\n")
    for command, indent, output in sorted(fixes, key=lambda f: -f[0].line):
        start = command.output_line - 1
        printed = output.rstrip("\n").split("\n")
        # A line that matches stays as the page writes it (its ids, its times).
        kept = [
            want if i < len(command.expected) and _pattern(want).fullmatch(_normal(got)) else got
            for i, (want, got) in enumerate(
                zip([*command.expected, *printed], printed, strict=False)
            )
        ]
        new = [(" " * indent + line).rstrip() for line in kept]
        lines[start : start + len(command.expected)] = new
    page.write_text("\n".join(lines))


def shell_env(home: Path, **more: str) -> dict[str, str]:
    """A clean environment: the project's executables first, HOME of the session's own."""
    venv_bin = Path(sys.executable).parent
    path = f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC", "COLUMNS": "200"}
    env.update(more)
    return env
