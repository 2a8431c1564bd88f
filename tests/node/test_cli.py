"""`pullkeeper node render|diff|apply`, the real executable on a temporary root: what it
prints, its exit statuses, and that bad input writes nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

import pullkeeper
from tests.tools import pullkeeper_executable

PROFILE = {
    "registries": [
        {"host": "docker.io", "mirrors": ["https://mirror.corp.example"]},
        {"host": "lab.corp.example:5000", "insecure": "http"},
    ],
    "logins": {"registry.corp.example": {"username": "robot", "password": "pw-node-robot-1"}},
}


def node(root: Path, *args: str, profile: object = PROFILE) -> subprocess.CompletedProcess[str]:
    (root.parent / "profile.yaml").write_text(
        profile if isinstance(profile, str) else yaml.safe_dump(profile)
    )
    return subprocess.run(
        [
            pullkeeper_executable(),
            "node",
            *args,
            "--profile",
            str(root.parent / "profile.yaml"),
            "--root",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(pullkeeper.__file__).parents[1])},
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "node"
    made.mkdir()
    return made


def test_apply_then_apply_again_then_diff(root: Path) -> None:
    first = node(root, "apply")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:4] == [
        "created /etc/containerd/certs.d/docker.io/hosts.toml",
        "created /etc/containerd/certs.d/lab.corp.example:5000/hosts.toml",
        "created /etc/containerd/config.toml",
        "created /var/lib/kubelet/config.json",
    ]
    assert "restart it once" in first.stdout and "no restart" in first.stdout
    assert "pw-node-robot-1" not in first.stdout + first.stderr
    config_json = root / "var/lib/kubelet/config.json"
    assert config_json.stat().st_mode & 0o777 == 0o600
    again = node(root, "apply")
    assert (again.returncode, again.stdout) == (
        0,
        "nothing to change: 4 files as the profile says\n",
    )
    assert node(root, "diff").returncode == 0
    dropped = {**PROFILE, "registries": PROFILE["registries"][:1]}  # type: ignore[index]
    diff = node(root, "diff", profile=dropped)
    assert diff.returncode == 1
    assert "--- /etc/containerd/certs.d/lab.corp.example:5000/hosts.toml" in diff.stdout
    assert (root / "etc/containerd/certs.d/lab.corp.example:5000/hosts.toml").exists()
    removed = node(root, "apply", profile=dropped)
    assert "removed /etc/containerd/certs.d/lab.corp.example:5000/hosts.toml" in removed.stdout
    assert not (root / "etc/containerd/certs.d/lab.corp.example:5000").exists()


def test_render_prints_every_file_and_hides_logins(root: Path) -> None:
    done = node(root, "render", "--runtime", "containers", "--runtime", "kubelet")
    assert done.returncode == 0, done.stderr
    assert "# /etc/containers/registries.conf.d/50-pullkeeper.conf\n" in done.stdout
    assert "# /var/lib/kubelet/config.json (0600)\n# (holds logins" in done.stdout
    assert "pw-node-robot-1" not in done.stdout
    assert not any(root.iterdir())  # render writes nothing
    shown = node(root, "render", "--runtime", "kubelet", "--show-secrets")
    assert '"password":"pw-node-robot-1"' in shown.stdout


def test_what_dockers_files_cannot_hold_is_a_note_on_stderr(root: Path) -> None:
    hub = {"url": "https://art.corp.example/v2/hub", "override_path": True}
    profile = {"registries": [{"host": "docker.io", "mirrors": ["https://m.example", hub]}]}
    done = node(root, "render", "--runtime", "docker", profile=profile)
    assert done.returncode == 0, done.stderr
    [note] = done.stderr.splitlines()
    assert note.startswith("note: docker: the mirror https://art.corp.example/v2/hub is left out")
    assert '"https://m.example"' in done.stdout and "art.corp.example" not in done.stdout
    quiet = node(root, "render", "--runtime", "containerd", profile=profile)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.parametrize(
    ("profile", "words"),
    [
        (
            {"registries": [{"host": "r.example", "ca": "not a certificate"}]},
            "registries[0].ca: is not a PEM certificate",
        ),
        ({"registries": [{"host": "https://r.example"}]}, "registries[0].host:"),
        (
            {
                "registries": [
                    {"host": "a.example", "mirrors": ["https://b.example"]},
                    {"host": "b.example", "mirrors": ["https://a.example"]},
                ]
            },
            "the mirrors loop: a.example -> b.example -> a.example",
        ),
        ("registries: [", "is not YAML or JSON"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    root: Path, profile: object, words: str
) -> None:
    done = node(root, "apply", profile=profile)
    assert done.returncode == 2, done
    [line] = done.stderr.splitlines()
    assert "profile.yaml" in line and words in line, line
    assert not any(root.iterdir())


def test_a_file_someone_else_wrote_is_refused_then_taken_over(root: Path) -> None:
    theirs = root / "etc/containerd/certs.d/docker.io/hosts.toml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("# mine\n")
    refused = node(root, "apply")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "refused /etc/containerd/certs.d/docker.io/hosts.toml: not written by pullkeeper"
    )
    assert not (root / "var/lib/kubelet/config.json").exists()
    taken = node(root, "apply", "--take-over")
    assert taken.returncode == 0, taken.stderr
    assert (
        "(kept as /etc/containerd/certs.d/docker.io/hosts.toml.pullkeeper-backup)" in taken.stdout
    )
    assert (theirs.parent / "hosts.toml.pullkeeper-backup").read_text() == "# mine\n"


def test_an_unwritable_place_is_one_line_exit_2_and_nothing_written(root: Path) -> None:
    # The kubelet's file comes last: the containerd files before it could be written.
    (root / "blocked").write_text("a file where a directory should be\n")
    done = node(root, "apply", "--kubelet-root-dir", "/blocked/kubelet")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert f"cannot write {root / 'blocked'}" in line and "directory" in line, line
    assert not (root / "etc").exists()  # none of them was
