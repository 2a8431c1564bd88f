"""`pullkeeper creds`: which credentials the kubelet would use."""

from __future__ import annotations

import click

from pullkeeper.cli.common import CLIError, echo_json, output_option, table, warn
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
    required=True,
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
@click.option("--no-normalize", is_flag=True, help="Look IMAGE up exactly as written.")
@click.option("--show-secrets", is_flag=True, help="Include passwords in the output.")
@output_option
def resolve(
    image_ref: str,
    configs: tuple[str, ...],
    node_configs: tuple[str, ...],
    no_normalize: bool,
    show_secrets: bool,
    output: str,
) -> None:
    """Which credentials the kubelet would try for IMAGE, in its order."""
    try:
        result = config_files.resolve(image_ref, configs, node_configs, normalize=not no_normalize)
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    for w in result.warnings:
        warn(w)
    if output == "json":
        matches = []
        for c in result.matches:
            m = {
                "registry": c.registry,
                "username": c.username,
                "email": c.email,
                "source": c.source,
            }
            if show_secrets:
                m["password"] = c.password
            matches.append(m)
        echo_json(
            {
                "image": result.image,
                "repository": result.repository,
                "found": bool(matches),
                "matches": matches,
            }
        )
        return
    click.echo(f"image:      {result.image}\nrepository: {result.repository}")
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
