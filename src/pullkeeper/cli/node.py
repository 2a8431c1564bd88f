"""`pullkeeper node`: a node's registry configuration (CAs, insecure hosts, mirrors, logins)
written where its container runtimes and the kubelet read it, from a node profile."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError
from pullkeeper.core.nodeconfig.profile import ProfileError
from pullkeeper.node.apply import BACKUP, Refused, Step
from pullkeeper.services import node_files
from pullkeeper.services.node_files import RELOADS, RUNTIMES, Layout

_DEFAULT = Layout()


class RefusedFiles(click.ClickException):
    """Files the apply would not change: one line each on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(self.message, err=True)


def _options(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--profile",
                "profile_file",
                required=True,
                type=click.Path(dir_okay=False, path_type=Path),
                help="The node profile: a YAML or JSON file with registries and logins.",
            ),
            click.option(
                "--runtime",
                "runtimes",
                multiple=True,
                type=click.Choice(RUNTIMES),
                default=("containerd", "kubelet"),
                show_default=True,
                help="Whose files to write (repeatable).",
            ),
            click.option(
                "--root",
                type=click.Path(file_okay=False, path_type=Path),
                default=Path("/"),
                show_default=True,
                help="Where the node's file system is (a pod's mount of the host's).",
            ),
            click.option(
                "--containerd-config",
                default=_DEFAULT.containerd_config,
                show_default=True,
                help="containerd's config.toml.",
            ),
            click.option(
                "--containerd-hosts-dir",
                default=_DEFAULT.containerd_hosts,
                show_default=True,
                help="containerd's registry config_path (HOST/hosts.toml).",
            ),
            click.option(
                "--kubelet-root-dir",
                default=_DEFAULT.kubelet_root_dir,
                show_default=True,
                help="The kubelet's --root-dir, where it reads config.json.",
            ),
            click.option(
                "--state-dir",
                default=_DEFAULT.state,
                show_default=True,
                help="Where pullkeeper remembers the files it wrote.",
            ),
        ]
    ):
        f = option(f)
    return f


def _layout(given: dict[str, Any]) -> Layout:
    return Layout(
        containerd_config=given["containerd_config"],
        containerd_hosts=given["containerd_hosts_dir"],
        kubelet_root_dir=given["kubelet_root_dir"],
        state=given["state_dir"],
    )


def _profile(path: Path, runtimes: Sequence[str]) -> Any:
    """The profile in the file; what the runtimes' files leave out of it said on stderr."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"{path}: cannot be read ({e.__class__.__name__})") from None
    try:
        profile = node_files.load_profile(text, str(path))
    except ProfileError as e:
        raise CLIError(f"{e.field}: {e.message}") from None
    for line in node_files.left_out(profile, runtimes):
        click.echo(f"note: {line}", err=True)
    return profile


def _steps(given: dict[str, Any], *, dry_run: bool, take_over: bool = False) -> list[Step]:
    profile = _profile(given["profile_file"], given["runtimes"])
    try:
        return node_files.apply(
            profile,
            given["runtimes"],
            _layout(given),
            given["root"],
            take_over=take_over,
            dry_run=dry_run,
        )
    except ProfileError as e:
        raise CLIError(f"{e.field}: {e.message}") from None
    except Refused as e:
        raise RefusedFiles("\n".join(f"refused {s.path}: {s.why}" for s in e.steps)) from None
    except OSError as e:
        raise CLIError(f"cannot write {e.filename or 'a file'}: {e.strerror}") from None


@click.group()
def node() -> None:
    """A node's registry configuration for containerd, CRI-O/podman, Docker, RKE2/k3s and
    the kubelet, written from a node profile."""


@node.command("render")
@_options
@click.option("--show-secrets", is_flag=True, help="Print the files that hold logins too.")
def node_render(show_secrets: bool, **given: Any) -> None:
    """Print every file the profile makes for the runtimes, as it would be written."""
    profile = _profile(given["profile_file"], given["runtimes"])
    try:
        rendered = node_files.render(profile, given["runtimes"], _layout(given), given["root"])
    except ProfileError as e:
        raise CLIError(f"{e.field}: {e.message}") from None
    for f in rendered:
        click.echo(f"# {f.path}{' (0600)' if f.secret else ''}")
        if f.secret and not show_secrets:
            click.echo("# (holds logins: --show-secrets prints it)")
        else:
            click.echo(f.content.decode("utf-8", "replace"), nl=False)
        click.echo()


@node.command("diff")
@_options
def node_diff(**given: Any) -> None:
    """Print a unified diff of what `apply` would change; exit status 1 when it would change
    anything, 0 when the node is as the profile says."""
    steps = _steps(given, dry_run=True)
    for step in steps:
        click.echo(step.diff(), nl=False)
    if any(s.changes for s in steps):
        sys.exit(1)


@node.command("apply")
@_options
@click.option("--dry-run", is_flag=True, help="Say what would change (with diffs); write nothing.")
@click.option(
    "--take-over",
    is_flag=True,
    help="Replace files pullkeeper did not write (each kept as FILE" + BACKUP + ").",
)
def node_apply(dry_run: bool, take_over: bool, **given: Any) -> None:
    """Write the profile's files where the runtimes read them: only what changed, each
    atomically; files holding logins 0600. A file pullkeeper did not write is refused unless
    --take-over; what an earlier apply wrote and the profile dropped is removed."""
    steps = _steps(given, dry_run=dry_run, take_over=take_over)
    changed = [s for s in steps if s.changes]
    verb = {"create": "create", "update": "update", "remove": "remove"}
    for s in changed:
        done = verb[s.action] + ("" if dry_run else "d")
        kept = f" (kept as {s.path}{BACKUP})" if s.backup else ""
        click.echo(f"{done} {s.path}{kept}")
        if dry_run:
            click.echo(s.diff(), nl=False)
    if not changed:
        click.echo(f"nothing to change: {len(steps)} files as the profile says")
        return
    if not dry_run:
        for runtime in given["runtimes"]:
            click.echo(f"{runtime}: {RELOADS[runtime]}")
