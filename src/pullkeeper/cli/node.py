"""`pullkeeper node`: a node's registry configuration (CAs, insecure hosts, mirrors, logins)
written where its container runtimes and the kubelet read it, from a node profile (a file,
or the server's with a node token), once or kept so by the agent."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli import node_profiles, node_server
from pullkeeper.cli.common import CLIError
from pullkeeper.cli.node_manifests import manifests
from pullkeeper.core.nodeconfig.profile import NodeProfile, ProfileError
from pullkeeper.node.apply import BACKUP, Refused, Step
from pullkeeper.services import node_files
from pullkeeper.services.node_agent import Agent, FetchError, Pass
from pullkeeper.services.node_files import RELOADS, RUNTIMES, Layout

_DEFAULT = Layout()


class RefusedFiles(click.ClickException):
    """Files the apply would not change: one line each on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(self.message, err=True)


def _layout_options(f: Any) -> Any:
    for option in reversed(
        [
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


def _options(f: Any) -> Any:
    """A profile from a file, or from the server with a node token; where the files go."""
    f = node_server.server_options(_layout_options(f))
    return click.option(
        "--profile",
        "profile_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The node profile: a YAML or JSON file with registries and logins (or --server).",
    )(f)


def _agent_options(f: Any) -> Any:
    return node_server.server_options(_layout_options(f), required=True)


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
    _notes(node_files.left_out(profile, runtimes))
    return profile


def _notes(lines: Sequence[str]) -> None:
    """What the runtimes' files leave out of the profile (a mirror a runtime cannot use)."""
    for line in lines:
        click.echo(f"note: {line}", err=True)


def _agent(given: dict[str, Any], api: Any, *, take_over: bool = False) -> Agent:
    cluster, node_name = given["cluster"], given["node_name"]
    return Agent(
        node_server.fetcher(api, cluster, node_name),
        node_server.reporter(api, cluster, node_name),
        node_server.labels_source(given),
        given["runtimes"],
        _layout(given),
        given["root"],
        take_over=take_over,
    )


def _source(given: dict[str, Any]) -> str:
    """ "file" or "server": where the profile comes from, exactly one given."""
    if bool(given["profile_file"]) == bool(given["server"]):
        raise CLIError("give the profile: --profile FILE, or --server URL with a node token")
    return "file" if given["profile_file"] else "server"


def _fetched(given: dict[str, Any]) -> NodeProfile:
    """The server's profile for this node (render, diff: nothing reported)."""
    from pullkeeper.core.nodeconfig.profile import parse  # noqa: PLC0415 - server path only

    with node_server.connect(given) as api:
        labels = node_server.labels_source(given)()
        try:
            fetched = node_server.fetcher(api, given["cluster"], given["node_name"])(labels, None)
            return parse(fetched.document)
        except (FetchError, ProfileError) as e:
            raise CLIError(str(e)) from None


def _steps(given: dict[str, Any], *, dry_run: bool, take_over: bool = False) -> list[Step]:
    if _source(given) == "server":
        with node_server.connect(given) as api:
            done = _agent(given, api, take_over=take_over).run_once(dry_run=dry_run)
        _notes(done.notes)
        return _passed(done, dry_run)
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


def _passed(done: Pass, dry_run: bool) -> list[Step]:
    """A pass's steps, or its failure as the file path would fail."""
    if done.state == "failed":
        raise CLIError(done.detail)
    if done.state == "drifted" and not dry_run:
        raise RefusedFiles(f"refused: {done.detail}")
    return done.steps


@click.group()
def node() -> None:
    """A node's registry configuration for containerd, CRI-O/podman, Docker, RKE2/k3s and
    the kubelet, written from a node profile."""


node.add_command(node_profiles.profile)
node.add_command(node_profiles.status)
node.add_command(manifests)


@node.command("render")
@_options
@click.option("--show-secrets", is_flag=True, help="Print the files that hold logins too.")
def node_render(show_secrets: bool, **given: Any) -> None:
    """Print every file the profile makes for the runtimes, as it would be written."""
    if _source(given) == "server":
        profile = _fetched(given)
        _notes(node_files.left_out(profile, given["runtimes"]))
    else:
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


@node.command("agent")
@_agent_options
@click.option(
    "--interval",
    type=click.IntRange(1, 86400),
    default=60,
    show_default=True,
    help="Seconds between passes.",
)
@click.option(
    "--take-over",
    is_flag=True,
    help="Replace files pullkeeper did not write (each kept as FILE" + BACKUP + ").",
)
def node_agent(interval: int, take_over: bool, **given: Any) -> None:
    """Keep this node's files as its profile on the server says, until stopped (SIGTERM):
    every --interval, fetch the profile (only what changed is sent), write what differs, and
    report the node's state to the server: applied, drifted (a file someone else changed,
    left alone) or failed (the files stay as they were)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with node_server.connect(given) as api:
        agent = _agent(given, api, take_over=take_over)
        click.echo(
            f"node agent of {given['node_name']} in cluster {given['cluster']}: every {interval}s"
        )
        agent.run(stop, interval, _log)
    click.echo("node agent stopped")


def _log(done: Pass) -> None:
    """One line per pass, and one per file changed."""
    for s in done.changed:
        click.echo(f"{s.action}d {s.path}" + (f" (kept as {s.path}{BACKUP})" if s.backup else ""))
    profile = f"profile {done.profile}" if done.profile else "no profile"
    click.echo(f"{done.state} ({profile}): {done.detail}", err=done.state != "applied")
