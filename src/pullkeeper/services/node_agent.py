"""A node's agent: its node profile fetched from the server, its files kept as the profile
says, and its state reported (applied, drifted, failed), once or every interval.

Applied: every file is as the profile says. Drifted: someone else changed a file the
agent wrote (or wrote one where the agent would), and the agent left it alone (unless it
takes files over). Failed: the profile could not be fetched, or a file not written; the
files stay as they were (a server that cannot be reached never empties a node).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pullkeeper.core.nodeconfig.profile import NodeProfile, ProfileError, parse
from pullkeeper.kube.api import Access, ClusterAPI, KubeError
from pullkeeper.node.apply import Refused, Step
from pullkeeper.services import node_files
from pullkeeper.services.node_files import Layout

__all__ = ["Agent", "FetchError", "Fetched", "Pass", "node_labels"]

# How often an agent whose state did not change says so anyway (seconds): the server's
# list shows when each node was last heard of.
HEARTBEAT = 300.0


class FetchError(Exception):
    """The profile could not be fetched (the server's answer, or why there was none)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    digest: str
    profile: str | None  # its name on the server; None: no profile selects this node
    # A node profile document (registries, logins); None: unchanged since the digest asked
    # with.
    document: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Pass:
    state: str  # applied, drifted, failed
    detail: str
    profile: str | None = None
    digest: str = ""
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the runtimes' files leave out

    @property
    def changed(self) -> list[Step]:
        return [s for s in self.steps if s.changes]


def node_labels(name: str, kubeconfig: str = "") -> dict[str, str]:
    """The labels of Node `name`, read with a kubeconfig, else the pod's service account;
    KubeError when they cannot be."""
    api = ClusterAPI(Access(kubeconfig=kubeconfig) if kubeconfig else Access(in_cluster=True))
    try:
        return api.node_labels(name)
    finally:
        api.close()


Fetch = Callable[[dict[str, str], str | None], Fetched]
Report = Callable[[Pass], None]


class Agent:
    """One node's agent: `fetch` asks the server for the profile (the node's labels, the
    digest it has), `report` tells it a pass's state, `labels` reads the node's labels."""

    def __init__(
        self,
        fetch: Fetch,
        report: Report,
        labels: Callable[[], dict[str, str]],
        runtimes: Sequence[str],
        layout: Layout,
        root: Path,
        *,
        take_over: bool = False,
    ) -> None:
        self._fetch, self._report, self._labels = fetch, report, labels
        self._runtimes, self._layout, self._root = runtimes, layout, root
        self._take_over = take_over
        self._kept: tuple[str, str | None, NodeProfile] | None = None  # digest, name, profile
        self._said: tuple[str, str, str] | None = None
        self._said_at = 0.0

    def _profile(self) -> tuple[str, str | None, NodeProfile]:
        labels = self._labels()
        fetched = self._fetch(labels, self._kept[0] if self._kept else None)
        if fetched.document is None:
            if self._kept is None:
                raise FetchError("the server said the profile is unchanged, but none was read")
            return self._kept
        try:
            profile = parse(fetched.document)
        except ProfileError as e:
            raise FetchError(f"the server's profile cannot be used: {e}") from None
        self._kept = (fetched.digest, fetched.profile, profile)
        return self._kept

    def run_once(self, *, dry_run: bool = False) -> Pass:
        """Fetch, apply (or with dry_run, only compare), and report."""
        try:
            digest, name, profile = self._profile()
        except (FetchError, KubeError) as e:
            return self._told(Pass("failed", str(e)), dry_run)
        try:
            steps = node_files.apply(
                profile,
                self._runtimes,
                self._layout,
                self._root,
                take_over=self._take_over,
                dry_run=dry_run,
            )
        except Refused as e:
            refused = "; ".join(f"{s.path}: {s.why}" for s in e.steps)
            return self._told(Pass("drifted", f"left alone: {refused}", name, digest), dry_run)
        except ProfileError as e:
            return self._told(Pass("failed", str(e), name, digest), dry_run)
        except OSError as e:
            why = f"cannot write {e.filename or 'a file'}: {e.strerror}"
            return self._told(Pass("failed", why, name, digest), dry_run)
        changed = [s for s in steps if s.changes]
        notes = node_files.left_out(profile, self._runtimes)
        if dry_run and changed:
            detail = "would change " + ", ".join(s.path for s in changed)
            return Pass("drifted", detail, name, digest, steps, notes)
        detail = (
            ", ".join(f"{s.action}d {s.path}" for s in changed)
            if changed
            else f"{len(steps)} files as the profile says"
        )
        return self._told(Pass("applied", detail, name, digest, steps, notes), dry_run)

    def _told(self, done: Pass, dry_run: bool) -> Pass:
        """Report a pass when its state changed or the heartbeat is due."""
        said = (done.state, done.digest, done.detail if done.state != "applied" else "")
        now = time.monotonic()
        if not dry_run and (said != self._said or now - self._said_at >= HEARTBEAT):
            try:
                self._report(done)
            except FetchError:
                return done  # said again at the next pass
            self._said, self._said_at = said, now
        return done

    def run(self, stop: threading.Event, interval: float, log: Callable[[Pass], None]) -> None:
        """Passes every `interval` seconds until `stop` is set; `log` sees each."""
        while not stop.is_set():
            log(self.run_once())
            stop.wait(interval)
