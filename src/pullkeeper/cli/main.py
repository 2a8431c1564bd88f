"""The `pullkeeper` command. Subcommands load on first use to keep start-up fast."""

from __future__ import annotations

import importlib
import io
import sys

import click
from click.shell_completion import CompletionItem

from pullkeeper import __version__

# Each subcommand: its module, its name there, and its help's first sentence (what the
# command list shows; tests/integration/test_cli_imports.py pins it to the command's own).
_COMMANDS = {
    "attach": (
        "pullkeeper.cli.workloads",
        "attach",
        "Add to KIND/NAME (deployment/, statefulset/ or daemonset/) the pull secrets its images "
        "need that it lacks.",
    ),
    "audit": (
        "pullkeeper.cli.access",
        "audit",
        "The audit trail, newest first: who did what, when, from where (never a secret).",
    ),
    "check": (
        "pullkeeper.cli.check",
        "check",
        "Whether each IMAGE can be pulled with the credentials the kubelet would use, and why not.",
    ),
    "cluster": (
        "pullkeeper.cli.resources",
        "cluster",
        "Clusters the server manages credentials for.",
    ),
    "completion": (
        "pullkeeper.cli.completion",
        "completion",
        "Print the shell completion script for SHELL: bash, zsh or fish.",
    ),
    "credential": (
        "pullkeeper.cli.credential",
        "credential",
        "Registry credentials: create, list, edit, (de)activate, and what applies where.",
    ),
    "creds": (
        "pullkeeper.cli.resolve",
        "creds",
        "Registry credentials as the kubelet sees them.",
    ),
    "db": (
        "pullkeeper.cli.serve",
        "db",
        "The server's store.",
    ),
    "deploy": (
        "pullkeeper.cli.workloads",
        "deploy",
        "Deploy NAME (a Deployment, labels app=NAME) whose pods carry exactly the pull secrets "
        "the kubelet would use for IMAGE in the namespace, then follow the rollout.",
    ),
    "node": (
        "pullkeeper.cli.node",
        "node",
        "A node's registry configuration for containerd, CRI-O/podman, Docker, RKE2/k3s and the "
        "kubelet, written from a node profile.",
    ),
    "image": (
        "pullkeeper.cli.image",
        "image",
        "Image references.",
    ),
    "keys": (
        "pullkeeper.cli.serve",
        "keys",
        "The encryption keys of secret material.",
    ),
    "kubelet-credential-provider": (
        "pullkeeper.cli.credential_provider",
        "kubelet_credential_provider",
        "Answer the kubelet's CredentialProviderRequest on standard input from one source.",
    ),
    "login": (
        "pullkeeper.cli.login",
        "login",
        "Log in to the server at URL and save the session.",
    ),
    "logout": (
        "pullkeeper.cli.login",
        "logout",
        "Revoke the saved session's token on the server and forget the session.",
    ),
    "manifest": (
        "pullkeeper.cli.manifest",
        "manifest",
        "Manifest lists and OCI indexes: one image name for several platforms.",
    ),
    "namespace": (
        "pullkeeper.cli.resources",
        "namespace",
        "Namespaces known in a cluster, and the project each belongs to.",
    ),
    "policy": (
        "pullkeeper.cli.resources",
        "policy",
        "Registry policy of a cluster or a project: default registry, allowlist, always-pull, "
        "ServiceAccount mode.",
    ),
    "project": (
        "pullkeeper.cli.resources",
        "project",
        "Projects: groups of namespaces in a cluster, with members and their roles.",
    ),
    "registry": (
        "pullkeeper.cli.registry",
        "registry",
        "Container registries as this host sees them.",
    ),
    "render": (
        "pullkeeper.cli.gitops",
        "render",
        "Print the Secrets of every namespace pullkeeper knows, for `kubectl apply -f -`.",
    ),
    "secret": (
        "pullkeeper.cli.secret",
        "secret",
        "Create, import and decode registry-credential Secrets.",
    ),
    "serve": (
        "pullkeeper.cli.serve",
        "serve",
        "Run the management server: REST API, admission webhook, health and metrics.",
    ),
    "token": (
        "pullkeeper.cli.access",
        "token",
        "Your API tokens: for scripts and CI (PULLKEEPER_TOKEN), expiring, revocable.",
    ),
    "user": (
        "pullkeeper.cli.access",
        "user",
        "Users of the server (admins only).",
    ),
    "webhook": (
        "pullkeeper.cli.webhook",
        "webhook",
        "The admission webhook that gives every pod its pull Secrets and enforces policy.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """The command names from the table above, as click would complete them from the
        commands: a Tab that imported every subcommand would take half a second."""
        items = [
            CompletionItem(name, help=click.Command(name, help=summary).get_short_help_str())
            for name, (_, _, summary) in sorted(_COMMANDS.items())
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list as click writes it, from the summaries above: asking each
        command for its line would import every subcommand, half a second of start-up."""
        limit = formatter.width - 6 - max(len(name) for name in _COMMANDS)
        rows = [
            (name, click.Command(name, help=summary).get_short_help_str(limit))
            for name, (_, _, summary) in sorted(_COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pullkeeper", message="%(prog)s %(version)s")
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
