"""Node files put in place (node/apply.py) under a temporary root: atomic, idempotent,
owner-only for secrets, never over someone else's file unless taken over, what a profile
drops removed, and applies on one node taking turns."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from pullkeeper.core.nodeconfig import containerd
from pullkeeper.core.nodeconfig.files import Rendered
from pullkeeper.core.nodeconfig.profile import parse
from pullkeeper.node.apply import BACKUP, NodeFiles, Refused

HOSTS = "/etc/containerd/certs.d"


def rendered(*hosts: str) -> list[Rendered]:
    return containerd.files(parse({"registries": [{"host": h} for h in hosts]}), HOSTS)


def on_disk(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def test_files_are_written_once_and_a_second_apply_changes_nothing(tmp_path: Path) -> None:
    node = NodeFiles(tmp_path)
    wanted = [
        *rendered("a.example", "b.example"),
        Rendered("/etc/pk/auth.json", b"{}", secret=True),
    ]
    first = node.apply(wanted)
    assert [s.action for s in first] == ["create", "create", "create"]
    for f in wanted:
        assert on_disk(tmp_path, f.path).read_bytes() == f.content
    hosts = on_disk(tmp_path, f"{HOSTS}/a.example/hosts.toml")
    assert stat.S_IMODE(hosts.stat().st_mode) == 0o644
    assert stat.S_IMODE(on_disk(tmp_path, "/etc/pk/auth.json").stat().st_mode) == 0o600
    inode = hosts.stat().st_ino
    second = node.apply(wanted)
    assert [s.action for s in second] == ["unchanged"] * 3
    assert hosts.stat().st_ino == inode  # not even renamed over


def test_a_dry_run_says_what_would_change_and_writes_nothing(tmp_path: Path) -> None:
    node = NodeFiles(tmp_path)
    steps = node.apply(rendered("a.example"), dry_run=True)
    assert [s.action for s in steps] == ["create"]
    assert '+server = "https://a.example"' in steps[0].diff()
    assert not on_disk(tmp_path, HOSTS).exists()
    secret = node.apply([Rendered("/etc/pk/auth.json", b"pw-123", secret=True)], dry_run=True)
    assert "pw-123" not in secret[0].diff() and "secrets" in secret[0].diff()


def test_a_file_not_written_by_pullkeeper_is_refused_unless_taken_over(tmp_path: Path) -> None:
    node = NodeFiles(tmp_path)
    theirs = on_disk(tmp_path, f"{HOSTS}/a.example/hosts.toml")
    theirs.parent.mkdir(parents=True)
    theirs.write_text('server = "https://theirs.example"\n')
    wanted = rendered("a.example", "b.example")
    with pytest.raises(Refused) as e:
        node.apply(wanted)
    assert [s.path for s in e.value.steps] == [f"{HOSTS}/a.example/hosts.toml"]
    assert "not written by pullkeeper" in str(e.value) and "--take-over" in str(e.value)
    assert not on_disk(tmp_path, f"{HOSTS}/b.example").exists()  # nothing half-done
    steps = node.apply(wanted, take_over=True)
    assert [s.action for s in steps] == ["update", "create"]
    assert theirs.read_bytes() == wanted[0].content
    backup = theirs.with_name("hosts.toml" + BACKUP)
    assert backup.read_text() == 'server = "https://theirs.example"\n'
    # Ours now: edited by hand, it is refused again (drift), not silently overwritten.
    theirs.write_text("# edited\n")
    with pytest.raises(Refused) as e:
        node.apply(wanted)
    assert "changed since pullkeeper wrote it" in str(e.value)


def test_a_registry_the_profile_drops_has_exactly_its_files_removed(tmp_path: Path) -> None:
    node = NodeFiles(tmp_path)
    node.apply(rendered("a.example", "b.example"))
    other = on_disk(tmp_path, f"{HOSTS}/c.example/hosts.toml")
    other.parent.mkdir(parents=True)
    other.write_text("# someone else's\n")
    steps = node.apply(rendered("a.example"))
    assert [(s.path, s.action) for s in steps] == [
        (f"{HOSTS}/a.example/hosts.toml", "unchanged"),
        (f"{HOSTS}/b.example/hosts.toml", "remove"),
    ]
    assert not on_disk(tmp_path, f"{HOSTS}/b.example").exists()  # its directory too
    assert other.exists()


def test_a_merged_file_is_changed_whoever_wrote_it_and_kept_once(tmp_path: Path) -> None:
    node = NodeFiles(tmp_path)
    config = on_disk(tmp_path, "/etc/containerd/config.toml")
    config.parent.mkdir(parents=True)
    config.write_text("version = 2\n")
    os.chmod(config, 0o640)
    merged = containerd.enable_config_path(config.read_text(), HOSTS)
    [step] = node.apply([Rendered("/etc/containerd/config.toml", merged.encode(), merged=True)])
    assert step.action == "update" and step.backup
    assert config.read_text() == merged and stat.S_IMODE(config.stat().st_mode) == 0o640
    assert config.with_name("config.toml" + BACKUP).read_text() == "version = 2\n"
    # Not a file of ours: the profile leaving it out removes nothing.
    assert node.apply([]) == []
    assert config.exists()


def test_concurrent_applies_take_turns(tmp_path: Path) -> None:
    wanted = rendered(*(f"r{i}.example" for i in range(20)))
    errors: list[BaseException] = []
    results: list[list[str]] = []

    def run() -> None:
        try:
            results.append([s.action for s in NodeFiles(tmp_path).apply(wanted)])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # One wrote everything; the others found it done. (Sorted as lists: sets sort by
    # inclusion, which leaves {"create"} and {"unchanged"} in any order.)
    assert sorted(sorted(set(r)) for r in results) == [
        ["create"],
        ["unchanged"],
        ["unchanged"],
        ["unchanged"],
    ]
    ledger = json.loads((tmp_path / "var/lib/pullkeeper/node/ledger.json").read_text())
    assert sorted(ledger["files"]) == sorted(f.path for f in wanted)
