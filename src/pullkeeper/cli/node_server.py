"""A node's side of the server: its profile fetched and its state reported with a node
token (`node render|diff|apply --server`, `node agent`), its labels read from its Node."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError
from pullkeeper.cli.remote import Remote, RemoteError, normalize_url
from pullkeeper.core.nodeconfig.profile import ProfileError
from pullkeeper.core.nodeconfig.selection import labels_from
from pullkeeper.services import node_agent
from pullkeeper.services.node_agent import Fetch, Fetched, FetchError, Pass, Report

__all__ = ["connect", "fetcher", "labels_source", "reporter", "server_options"]

# A pod's service account, as the kubelet mounts it: the agent in a DaemonSet reads its
# Node's labels with it.
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def server_options(f: Any, *, required: bool = False) -> Any:
    """The options of a node that asks the server for its profile."""
    options = [
        click.option(
            "--server",
            required=required,
            metavar="URL",
            help="The pullkeeper server to fetch the node's profile from (with --token-file).",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False),
            required=required,
            help="A file holding a node token (`pullkeeper cluster node-token create`).",
        ),
        click.option("--cluster", required=required, help="The node's cluster: its token's."),
        click.option(
            "--node-name",
            envvar="NODE_NAME",
            show_envvar=True,
            required=required,
            help="This node's name, as the cluster knows it.",
        ),
        click.option(
            "--node-labels",
            multiple=True,
            metavar="KEY=VALUE",
            help="This node's labels, which choose its profile (repeatable; a comma joins "
            "several) [default: read from its Node with --kubeconfig or, in a pod, its "
            "service account].",
        ),
        click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False),
            help="Read the node's labels from its Node with this kubeconfig.",
        ),
        click.option(
            "--ca-file",
            type=click.Path(dir_okay=False),
            help="The CA bundle the server's certificate is checked with [default: the system's].",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _token(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"--token-file {path}: cannot be read ({e.__class__.__name__})") from None
    if not token:
        raise CLIError(
            f"--token-file {path} is empty: put the node token `pullkeeper cluster node-token "
            "create` printed in it"
        )
    return token


def connect(given: dict[str, Any], timeout: float | None = None) -> Remote:
    """A client of the server with the node token, from the options."""
    needed = ("token_file", "cluster", "node_name")
    missing = ["--" + k.replace("_", "-") for k in needed if not given[k]]
    if missing:
        raise CLIError(f"--server needs {', '.join(missing)} too")
    url = normalize_url(given["server"])
    try:
        return Remote(url, _token(given["token_file"]), ca_file=given["ca_file"], timeout=timeout)
    except OSError as e:
        raise CLIError(f"--ca-file {given['ca_file']}: cannot be read ({e.strerror})") from None


def labels_source(given: dict[str, Any]) -> Callable[[], dict[str, str]]:
    """Where the node's labels come from: the options, its Node (a kubeconfig, or the pod's
    service account), or nowhere (then only a profile without a selector matches)."""
    if given["node_labels"]:
        try:
            labels = labels_from(given["node_labels"], "--node-labels")
        except ProfileError as e:
            raise CLIError(f"{e.field}: {e.message}") from None
        return lambda: labels
    kubeconfig, name = given["kubeconfig"] or "", given["node_name"]
    in_pod = os.environ.get("KUBERNETES_SERVICE_HOST") and _SERVICE_ACCOUNT_TOKEN.is_file()
    if not kubeconfig and not in_pod:
        return dict
    return lambda: node_agent.node_labels(name, kubeconfig)


def fetcher(api: Remote, cluster: str, node: str) -> Fetch:
    def fetch(labels: dict[str, str], digest: str | None) -> Fetched:
        params = {
            "cluster": cluster,
            "node": node,
            "label": [f"{k}={v}" for k, v in labels.items()],
        }
        try:
            _, found = api.get_unless("/node-profile", params, f'"{digest}"' if digest else None)
        except RemoteError as e:
            raise FetchError(e.format_message()) from None
        if found is None:
            return Fetched(digest or "", None, None)
        try:
            return Fetched(found["digest"], found["profile"], found["document"])
        except (KeyError, TypeError):
            raise FetchError(
                f"the answer from {api.base_url} holds no node profile: is it a pullkeeper "
                "server of this version or later?"
            ) from None

    return fetch


def reporter(api: Remote, cluster: str, node: str) -> Report:
    def report(done: Pass) -> None:
        body = {
            "cluster": cluster,
            "node": node,
            "profile": done.profile,
            "digest": done.digest,
            "state": done.state,
            "detail": done.detail,
        }
        try:
            api.post("/node-reports", body)
        except RemoteError as e:
            raise FetchError(e.format_message()) from None

    return report
