"""`pullkeeper node manifests`: what runs `pullkeeper node agent` on every node of a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from pullkeeper import __version__
from pullkeeper.cli.common import CLIError
from pullkeeper.core import node_manifests
from pullkeeper.core.manifest import to_json
from pullkeeper.node.apply import BACKUP
from pullkeeper.services.node_files import RUNTIMES, Layout

__all__ = ["DEFAULT_IMAGE", "manifests"]

DEFAULT_IMAGE = f"ghcr.io/pullkeeper/pullkeeper:{__version__}"
_DEFAULT = Layout()


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the server's CA) as literal blocks, readable as PEM."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _text(docs: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return to_json({"apiVersion": "v1", "kind": "List", "items": docs}) + "\n"
    return "".join(
        "---\n" + yaml.dump(d, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
        for d in docs
    )


def _server_ca(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"--ca-file: {path} cannot be read ({e.__class__.__name__})") from None


@click.command("manifests")
@click.option(
    "--server",
    "server_url",
    required=True,
    metavar="URL",
    help="The pullkeeper server, as the nodes reach it (http:// or https://).",
)
@click.option(
    "--cluster",
    required=True,
    metavar="NAME",
    help="The registered cluster the nodes are in: the node token's.",
)
@click.option(
    "-n",
    "--namespace",
    default=node_manifests.NAMESPACE,
    show_default=True,
    help="Where the agent runs, beside its token's Secret.",
)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="pullkeeper's image.")
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(RUNTIMES),
    default=node_manifests.DEFAULT_RUNTIMES,
    show_default=True,
    help="Whose files the agent writes (repeatable): only their directories are mounted.",
)
@click.option(
    "--ca-file",
    "server_ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The CA (PEM) of the server's certificate, when the system's trust lacks it.",
)
@click.option(
    "--token-secret",
    default=node_manifests.TOKEN_SECRET,
    show_default=True,
    help=f"The Secret holding the node token (key {node_manifests.TOKEN_KEY!r}).",
)
@click.option(
    "--interval",
    type=int,
    metavar="SECONDS",
    help=f"Between the agent's rounds, at least {node_manifests.MIN_INTERVAL} "
    "[default: the agent's].",
)
@click.option(
    "--containerd-config",
    default=_DEFAULT.containerd_config,
    show_default=True,
    help="containerd's config.toml on the nodes.",
)
@click.option(
    "--containerd-hosts-dir",
    default=_DEFAULT.containerd_hosts,
    show_default=True,
    help="containerd's registry config_path on the nodes.",
)
@click.option(
    "--kubelet-root-dir",
    default=_DEFAULT.kubelet_root_dir,
    show_default=True,
    help="The kubelet's --root-dir on the nodes.",
)
@click.option(
    "--state-dir",
    default=_DEFAULT.state,
    show_default=True,
    help="Where the agent remembers the files it wrote, on the nodes.",
)
@click.option(
    "--take-over",
    is_flag=True,
    help="The agent replaces files pullkeeper did not write (each kept as FILE" + BACKUP + ").",
)
@click.option(
    "--priority-class",
    default="system-node-critical",
    show_default=True,
    help="The agent's PriorityClass ('' for none).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="YAML documents, or one JSON List.",
)
def manifests(
    server_url: str,
    cluster: str,
    namespace: str,
    image: str,
    runtimes: tuple[str, ...],
    server_ca: Path | None,
    token_secret: str,
    interval: int | None,
    containerd_config: str,
    containerd_hosts_dir: str,
    kubelet_root_dir: str,
    state_dir: str,
    take_over: bool,
    priority_class: str,
    output: str,
) -> None:
    """Print the ServiceAccount, RBAC and DaemonSet that run the node agent on every node, for
    `kubectl apply -f -`.

    The node token (`pullkeeper cluster node-token create`) is read from the Secret
    --token-secret in the namespace; create it first. The pods mount only the host
    directories of the runtimes named, and may only get Node objects.
    """
    options = node_manifests.Options(
        image=image,
        server=server_url,
        cluster=cluster,
        paths=node_manifests.HostPaths(
            containerd_config=containerd_config,
            containerd_hosts=containerd_hosts_dir,
            containers=_DEFAULT.containers,
            docker=_DEFAULT.docker,
            rke2=_DEFAULT.rke2,
            kubelet_root_dir=kubelet_root_dir,
            state=state_dir,
        ),
        namespace=namespace,
        token_secret=token_secret,
        server_ca=_server_ca(server_ca),
        runtimes=runtimes,
        interval=interval,
        take_over=take_over,
        priority_class=priority_class,
    )
    try:
        docs = node_manifests.manifests(options)
    except node_manifests.ManifestError as e:
        raise CLIError(f"--{e.option}: {e.message}") from None
    click.echo(_text(docs, output), nl=False)
