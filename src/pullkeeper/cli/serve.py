"""`pullkeeper serve`: the management server."""

from __future__ import annotations

import click

from pullkeeper.cli.common import CLIError


@click.command()
def serve() -> None:
    """Run the management server (REST API, web UI, webhook).

    Not available in this release: the server arrives with the next one. The
    offline commands (image, creds, secret) work without it.
    """
    raise CLIError(
        "pullkeeper serve is not available yet in this release; the offline commands "
        "(pullkeeper image, creds, secret) work without a server"
    )
