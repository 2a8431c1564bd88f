"""`pullkeeper creds`: which credentials the kubelet would use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError, echo_json, output_option, table, warn
from pullkeeper.cli.predictions import route_lines
from pullkeeper.services import config_files


@click.group()
def creds() -> None:
    """Registry credentials as the kubelet sees them."""


@creds.command("resolve")
@click.argument("image_ref", metavar="IMAGE")
@click.option(
    "--config",
    "configs",
    multiple=True,
    metavar="FILE",
    help="A docker config.json, .dockercfg or Secret manifest; repeat for several "
    "imagePullSecrets, merged in order ('-' reads standard input).",
)
@click.option(
    "--node-config",
    "node_configs",
    multiple=True,
    metavar="FILE",
    help="The node's own config.json, tried after the pod's Secrets as the kubelet does.",
)
@click.option(
    "--node-profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A node profile (node apply's): its logins are the node's config.json, and it "
    "says which mirrors the runtime asks first.",
)
@click.option("--no-normalize", is_flag=True, help="Look IMAGE up exactly as written.")
@click.option("--show-secrets", is_flag=True, help="Include passwords in the output.")
@output_option
def resolve(
    image_ref: str,
    configs: tuple[str, ...],
    node_configs: tuple[str, ...],
    node_profile: Path | None,
    no_normalize: bool,
    show_secrets: bool,
    output: str,
) -> None:
    """Which credentials the kubelet would try for IMAGE, in its order."""
    if not configs and node_profile is None:
        raise CLIError("give --config FILE (the pod's pull Secrets), or --node-profile FILE")
    route: dict[str, Any] | None = None
    try:
        if node_profile is None:
            result = config_files.resolve(
                image_ref, configs, node_configs, normalize=not no_normalize
            )
        else:
            # Not at the top: only a profile loads its reader (YAML) and the node's rules.
            from pullkeeper.services import node_predictions  # noqa: PLC0415

            profile = node_predictions.load(str(node_profile))
            prediction = node_predictions.resolve(
                image_ref, configs, node_configs, profile, normalize=not no_normalize
            )
            result, route = prediction.resolution, prediction.node_profile
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    for w in result.warnings:
        warn(w)
    if output == "json":
        matches = []
        # Which came from the node's config.json, said when one was given.
        node_given = bool(node_configs) or node_profile is not None
        for i, c in enumerate(result.matches):
            m: dict[str, Any] = {
                "registry": c.registry,
                "username": c.username,
                "email": c.email,
                "source": c.source,
            }
            if node_given:
                m["from_node_config"] = result.from_node(i)
            if show_secrets:
                m["password"] = c.password
            matches.append(m)
        answer = {
            "image": result.image,
            "repository": result.repository,
            "found": bool(matches),
            "matches": matches,
        }
        if route is not None:
            answer["node_profile"] = route
        echo_json(answer)
        return
    click.echo(f"image:      {result.image}\nrepository: {result.repository}")
    _text(result, show_secrets)
    if route is not None:
        click.echo("\n".join(route_lines(route, 12, credentials=bool(result.matches))))


def _text(result: config_files.Resolution, show_secrets: bool) -> None:
    if not result.matches:
        click.echo("No credential matches: the kubelet would pull this image anonymously.")
        return
    n = len(result.matches)
    click.echo(f"The kubelet would try {n} credential{'s' if n > 1 else ''}, in this order:")
    headers = ["#", "REGISTRY", "USERNAME", "EMAIL", "SOURCE"]
    if show_secrets:
        headers.append("PASSWORD")
    rows = []
    for i, c in enumerate(result.matches, 1):
        row = [str(i), c.registry, c.username or "-", c.email or "-", c.source]
        if show_secrets:
            row.append(c.password)
        rows.append(row)
    click.echo(table(headers, rows))
