"""The `pullkeeper` command. Subcommands load on first use to keep start-up fast."""

from __future__ import annotations

import importlib
import io
import sys

import click

from pullkeeper import __version__

_COMMANDS = {
    "attach": ("pullkeeper.cli.workloads", "attach"),
    "audit": ("pullkeeper.cli.access", "audit"),
    "check": ("pullkeeper.cli.check", "check"),
    "cluster": ("pullkeeper.cli.resources", "cluster"),
    "credential": ("pullkeeper.cli.credential", "credential"),
    "creds": ("pullkeeper.cli.resolve", "creds"),
    "db": ("pullkeeper.cli.serve", "db"),
    "deploy": ("pullkeeper.cli.workloads", "deploy"),
    "image": ("pullkeeper.cli.image", "image"),
    "keys": ("pullkeeper.cli.serve", "keys"),
    "login": ("pullkeeper.cli.login", "login"),
    "logout": ("pullkeeper.cli.login", "logout"),
    "manifest": ("pullkeeper.cli.manifest", "manifest"),
    "namespace": ("pullkeeper.cli.resources", "namespace"),
    "policy": ("pullkeeper.cli.resources", "policy"),
    "project": ("pullkeeper.cli.resources", "project"),
    "registry": ("pullkeeper.cli.registry", "registry"),
    "render": ("pullkeeper.cli.gitops", "render"),
    "secret": ("pullkeeper.cli.secret", "secret"),
    "serve": ("pullkeeper.cli.serve", "serve"),
    "token": ("pullkeeper.cli.access", "token"),
    "user": ("pullkeeper.cli.access", "user"),
    "webhook": ("pullkeeper.cli.webhook", "webhook"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pullkeeper")
def cli() -> None:
    """Private container-registry credentials and pull policy for Kubernetes."""


def main() -> None:
    # httpx imports its own command-line client (rich, pygments) whenever those are
    # installed, as they are beside the test tools; a None entry makes that optional
    # import fail as it does where they are not, so `import httpx` costs the same.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    # Arguments and input that are not UTF-8 are carried as surrogate escapes;
    # text output writes those bytes back unchanged instead of failing.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    cli()
