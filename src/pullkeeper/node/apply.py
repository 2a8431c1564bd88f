"""Rendered node files put in place: each written atomically (0600 when it holds a secret,
else 0644) and only when its content changes; a file pullkeeper did not write (or that
was changed since) is left alone unless taken over, and then kept as FILE.pullkeeper-backup;
what an earlier apply wrote and the profile no longer has is removed.

A ledger in the state directory remembers what was written (path and content hash), and
an exclusive lock on it makes concurrent applies on one node take turns. Nothing is
written when any file is refused.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.files import write_atomic

__all__ = ["BACKUP", "DEFAULT_STATE", "NodeFiles", "Refused", "Step"]

DEFAULT_STATE = "/var/lib/pullkeeper/node"
BACKUP = ".pullkeeper-backup"
_LEDGER, _LOCK = "ledger.json", "ledger.lock"


class Refused(Exception):
    """Files an apply would not change; nothing was written."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        super().__init__("; ".join(f"{s.path}: {s.why}" for s in self.steps))


@dataclass(frozen=True, slots=True)
class Step:
    """What an apply does to one file: create, update, remove, unchanged or refuse."""

    path: str
    action: str
    before: bytes | None
    after: bytes | None
    secret: bool = False
    why: str = ""  # a refusal's reason
    backup: bool = False  # the file as it was is kept beside it

    @property
    def changes(self) -> bool:
        return self.action in ("create", "update", "remove")

    def diff(self) -> str:
        """A unified diff of the change ("" when none); a secret's content is never shown."""
        if not self.changes:
            return ""
        if self.secret:
            return f"--- {self.path}\n+++ {self.path}\n(a file holding secrets: {self.action})\n"
        before = (self.before or b"").decode("utf-8", "replace").splitlines(keepends=True)
        after = (self.after or b"").decode("utf-8", "replace").splitlines(keepends=True)
        return "".join(
            difflib.unified_diff(
                before,
                after,
                "/dev/null" if self.before is None else self.path,
                "/dev/null" if self.after is None else self.path,
            )
        )


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class NodeFiles:
    """The files of a node under `root` ("/" on the node itself; the host's mount in a
    pod), with the ledger in `state` (a path on the node)."""

    def __init__(self, root: Path = Path("/"), state: str = DEFAULT_STATE) -> None:
        self.root = root
        self.state = self._on_disk(state)

    def _on_disk(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _read(self, path: str) -> bytes | None:
        try:
            return self._on_disk(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # nothing there (yet)
            return None

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                ledger_file = self.state / _LEDGER
                ledger = json.loads(ledger_file.read_text()) if ledger_file.exists() else {}
                yield ledger
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def notes(self) -> dict[str, Any]:
        """What the last apply noted beside its files (what it merged into shared ones)."""
        with self._locked() as ledger:
            notes: dict[str, Any] = ledger.get("notes", {})
            return notes

    def _plan(
        self, ledger: dict[str, Any], wanted: Sequence[Rendered], take_over: bool
    ) -> list[Step]:
        written: dict[str, str] = ledger.get("files", {})
        steps: list[Step] = []
        for f in wanted:
            current = self._read(f.path)
            ours = f.path in written and current is not None and _digest(current) == written[f.path]
            if current == f.content:
                steps.append(Step(f.path, "unchanged", current, f.content, f.secret))
            elif current is None:
                steps.append(Step(f.path, "create", None, f.content, f.secret))
            elif ours:
                steps.append(Step(f.path, "update", current, f.content, f.secret))
            elif f.merged or take_over:
                # The first change of a file not ours keeps it as it was.
                steps.append(Step(f.path, "update", current, f.content, f.secret, backup=True))
            else:
                why = (
                    "changed since pullkeeper wrote it"
                    if f.path in written
                    else "not written by pullkeeper"
                )
                steps.append(
                    Step(
                        f.path,
                        "refuse",
                        current,
                        f.content,
                        f.secret,
                        f"{why}: --take-over replaces it (keeping it as " + f.path + BACKUP + ")",
                    )
                )
        kept = {f.path for f in wanted}
        for path in sorted(set(written) - kept):
            current = self._read(path)
            if current is None:
                continue
            if _digest(current) == written[path] or take_over:
                steps.append(Step(path, "remove", current, None))
            else:
                steps.append(
                    Step(
                        path,
                        "refuse",
                        current,
                        None,
                        why="changed since pullkeeper wrote it, "
                        "so not removed: --take-over removes it",
                    )
                )
        return steps

    def apply(
        self,
        wanted: Sequence[Rendered],
        *,
        take_over: bool = False,
        dry_run: bool = False,
        notes: dict[str, Any] | None = None,
    ) -> list[Step]:
        """Put the wanted files in place (with dry_run, only say what would change); the
        steps, or Refused when a file would not be changed (then nothing is)."""
        with self._locked() as ledger:
            steps = self._plan(ledger, wanted, take_over)
            refused = [s for s in steps if s.action == "refuse"]
            if refused:
                raise Refused(refused)
            self._check_writable(steps)
            if dry_run:
                return steps
            for step in steps:
                self._do(step)
            files = {f.path: _digest(f.content) for f in wanted if not f.merged}
            record = {
                "files": files,
                "notes": notes if notes is not None else ledger.get("notes", {}),
            }
            if record != ledger:
                write_atomic(self.state / _LEDGER, json.dumps(record, indent=1).encode())
            return steps

    def _check_writable(self, steps: Sequence[Step]) -> None:
        """OSError naming the place when a file cannot be written there, before any is: an
        apply that stops half-way would leave the runtimes a mix of two profiles."""
        for step in steps:
            if not step.changes:
                continue
            place = self._on_disk(step.path).parent
            while not place.exists():
                place = place.parent
            if not place.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, "a file stands where a directory should be", str(place)
                )
            if not os.access(place, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable", str(place))

    def _do(self, step: Step) -> None:
        target = self._on_disk(step.path)
        if step.action == "remove":
            target.unlink()
            with contextlib.suppress(OSError):  # a registry's directory, once empty
                target.parent.rmdir()
            return
        if not step.changes or step.after is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if step.backup and step.before is not None:
            backup = target.with_name(target.name + BACKUP)
            if not backup.exists():
                write_atomic(backup, step.before, 0o600)
        if step.secret:
            mode = 0o600
        elif step.before is not None:  # a file's own mode stays
            mode = os.stat(target).st_mode & 0o777
        else:
            mode = 0o644
        write_atomic(target, step.after, mode)
