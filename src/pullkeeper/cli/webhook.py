"""`pullkeeper webhook manifests`: what installs the admission webhook in a cluster."""

from __future__ import annotations

import base64
from pathlib import Path

import click
import yaml

from pullkeeper.cli.common import CLIError
from pullkeeper.cli.serve import _settings, _with_server_options
from pullkeeper.core import names, webhook_manifests
from pullkeeper.services import webhook_tls


@click.group()
def webhook() -> None:
    """The admission webhook that gives every pod its pull Secrets and enforces policy."""


@webhook.command("manifests")
@_with_server_options
@click.option(
    "-n",
    "--namespace",
    default="pullkeeper",
    show_default=True,
    help="The namespace pullkeeper runs in (never admitted by itself).",
)
@click.option(
    "--service",
    default="pullkeeper",
    show_default=True,
    help="The Service in front of the webhook listener.",
)
@click.option("--service-port", type=int, default=443, show_default=True)
@click.option("--url", help="Reach the webhook at this https:// URL instead of a Service.")
@click.option("--cluster", help="The registered cluster this webhook answers for.")
@click.option(
    "--mutate-failure-policy",
    type=click.Choice(["Ignore", "Fail"]),
    default="Ignore",
    show_default=True,
    help="If pullkeeper cannot answer: Ignore lets pods in without their Secrets.",
)
@click.option(
    "--validate-failure-policy",
    type=click.Choice(["Ignore", "Fail"]),
    default="Fail",
    show_default=True,
    help="If pullkeeper cannot answer: Fail keeps the allowlist closed.",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.IntRange(1, 30),
    default=5,
    show_default=True,
    help="Seconds the API server waits for an answer.",
)
@click.option("--pods-only", is_flag=True, help="Not the pod templates of workloads.")
@click.option(
    "--exclude-namespace",
    "excluded",
    multiple=True,
    default=("kube-system",),
    show_default=True,
    help="A namespace never sent to the webhook (repeatable; its own namespace always is not).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The CA of a certificate given to the server (default: the generated CA).",
)
def manifests(
    data: Path | None,
    database_url: str | None,
    config_file: Path | None,
    namespace: str,
    service: str,
    service_port: int,
    url: str | None,
    cluster: str | None,
    mutate_failure_policy: str,
    validate_failure_policy: str,
    timeout_seconds: int,
    pods_only: bool,
    excluded: tuple[str, ...],
    ca_file: Path | None,
) -> None:
    """Print the webhook configurations, the ServiceAccount and RBAC, for `kubectl apply -f -`.

    The caBundle is the CA of the certificate `pullkeeper serve --webhook-port` serves
    (generated in the data directory on first use, or the --ca-file of a given one).
    """
    if url is not None and not url.startswith("https://"):
        raise CLIError("--url must be an https:// URL: the API server calls webhooks over TLS")
    for name in excluded:
        try:
            names.validate_label(name, "--exclude-namespace")
        except ValueError as e:
            raise CLIError(str(e)) from None
    settings = _settings(config_file, data=data, database_url=database_url)
    try:
        if ca_file is not None:
            bundle = base64.b64encode(ca_file.read_bytes()).decode()
        else:
            bundle = webhook_tls.files(settings).ca_bundle()
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot read the webhook's CA: {e}") from None
    options = webhook_manifests.Options(
        ca_bundle=bundle,
        namespace=namespace,
        service=service,
        service_port=service_port,
        url=url,
        cluster=cluster,
        mutate_failure_policy=mutate_failure_policy,
        validate_failure_policy=validate_failure_policy,
        timeout_seconds=timeout_seconds,
        templates=not pods_only,
        excluded_namespaces=excluded,
    )
    docs = webhook_manifests.manifests(options)
    click.echo("".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs), nl=False)
