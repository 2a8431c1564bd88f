"""`pullkeeper check IMAGE`: can this pull, and if not, why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.predictions import route_lines
from pullkeeper.cli.registry_options import RegistryAccess, config_option, registry_access
from pullkeeper.cli.render import emit
from pullkeeper.cli.session import connect

EXIT_CANNOT_PULL = 1


@click.command("check")
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True)
@config_option
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Also check for this platform.")
@click.option(
    "--pull-policy",
    type=click.Choice(["Always", "IfNotPresent", "Never"]),
    help="The container's imagePullPolicy, if it sets one.",
)
@click.option(
    "--all", "try_all", is_flag=True, help="Try every credential, not only to the first that works."
)
@click.option(
    "--on-node",
    is_flag=True,
    help="The image is already on the node: with pull policy Never or IfNotPresent the "
    "kubelet runs that copy and the registry is not asked.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Images checked at once (connections and tokens are shared).",
)
@click.option(
    "--node-profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A node profile (node apply's): after the pod's credentials (--config), the node's "
    "config.json with its logins; and the mirrors the node asks first.",
)
@click.option(
    "--node-labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --namespace: the labels of the node the pod would run on, which choose the "
    "cluster's node profile (repeatable) [default: the profile of a node no selector picks].",
)
@click.option("-n", "--namespace", help="Check with the server's credentials for this namespace.")
@click.option("--cluster", help="The namespace's cluster (with --namespace).")
@registry_access
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "yaml"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def check(
    images: tuple[str, ...],
    platform: str | None,
    pull_policy: str | None,
    try_all: bool,
    on_node: bool,
    jobs: int,
    node_profile: Path | None,
    node_labels: tuple[str, ...],
    namespace: str | None,
    cluster: str | None,
    output: str,
    access: RegistryAccess,
) -> None:
    """Whether each IMAGE can be pulled with the credentials the kubelet would use, and why not.

    Offline, the credentials come from --config files (or ~/.docker/config.json);
    with --namespace, from the server's effective credentials for that namespace,
    and the server does the check (the secrets never leave it). Exit status 1
    when an image cannot be pulled.
    """
    options = {
        "platform": platform,
        "pull_policy": pull_policy,
        "try_all": try_all,
        "on_node": on_node,
    }
    if namespace:
        if access.configs:
            raise CLIError("--config and --namespace exclude each other")
        if node_profile:
            raise CLIError("--node-profile is for a check from here: leave out --namespace")
        labels = _labels(node_labels)
        results = [
            _on_server(image, namespace, cluster, access, options | {"node_labels": labels})
            for image in images
        ]
    else:
        if cluster:
            raise CLIError("--cluster needs --namespace")
        if node_labels:
            raise CLIError("--node-labels needs --namespace (the server's node profiles)")
        results = _offline(images, access, jobs, options, node_profile)
    if not emit(results[0] if len(results) == 1 else results, output):
        click.echo("\n\n".join(render(r) for r in results))
    if not all(r["ok"] for r in results):
        raise SystemExit(EXIT_CANNOT_PULL)


def _labels(items: tuple[str, ...]) -> dict[str, str]:
    if not items:
        return {}
    # Not at the top: the node's rules load a certificate library a check seldom needs.
    from pullkeeper.core.nodeconfig.profile import ProfileError  # noqa: PLC0415
    from pullkeeper.core.nodeconfig.selection import labels_from  # noqa: PLC0415

    try:
        return labels_from(items, "--node-labels")
    except ProfileError as e:
        raise CLIError(f"{e.field}: {e.message}") from None


def _offline(
    images: tuple[str, ...],
    access: RegistryAccess,
    jobs: int,
    options: dict[str, Any],
    node_profile: Path | None = None,
) -> list[dict[str, Any]]:
    # Not at the top: a check with --namespace runs on the server and never loads these.
    from pullkeeper.cli import candidates  # noqa: PLC0415
    from pullkeeper.services import pull_trial  # noqa: PLC0415

    tls = candidates.tls(access)
    routes: dict[str, dict[str, Any]] = {}
    try:
        for image in images:
            pull_trial.parse_image(image)
        pull_trial.parse_platform(options["platform"])
        if node_profile is None:
            found = {image: candidates.for_image(image, access) for image in dict.fromkeys(images)}
        else:
            found = _on_node(images, access, node_profile, routes)
        reports = pull_trial.check_many(
            images, found.__getitem__, lambda _host: tls, jobs=jobs, **options
        )
    except pull_trial.CheckInputError as e:
        raise CLIError(str(e)) from None
    results = [report.as_dict() for report in reports]
    for image, result in zip(images, results, strict=True):
        if image in routes:
            result["node_profile"] = routes[image]
    return results


def _on_node(
    images: tuple[str, ...],
    access: RegistryAccess,
    node_profile: Path,
    routes: dict[str, dict[str, Any]],
) -> dict[str, list[Any]]:
    """The credentials a node with the profile tries for each image: the pod's (--config only:
    not this machine's docker login, nor the server's), then the node's config.json; each
    image's route put in routes."""
    # Not at the top: only a profile loads its reader (YAML) and the node's rules.
    from pullkeeper.cli import candidates  # noqa: PLC0415
    from pullkeeper.services import config_files, node_predictions, pull_trial  # noqa: PLC0415

    trusted = candidates.token_hosts(access)
    found: dict[str, list[Any]] = {}
    warned: set[str] = set()
    try:
        profile = node_predictions.load(str(node_profile))
        for image in dict.fromkeys(images):
            on_node = node_predictions.check_candidates(image, access.configs, profile)
            for message in on_node.warnings:
                if message not in warned:
                    warned.add(message)
                    warn(message)
            found[image] = [pull_trial.trusting(c, trusted) for c in on_node.pod + on_node.node]
            routes[image] = on_node.node_profile
    except config_files.InputError as e:
        raise CLIError(str(e)) from None
    return found


def _on_server(
    image: str,
    namespace: str,
    cluster: str | None,
    access: RegistryAccess,
    options: dict[str, Any],
) -> dict[str, Any]:
    if not cluster:
        raise CLIError("--namespace needs --cluster (the cluster's name or id)")
    body = {"image": image, "cluster": cluster, "namespace": namespace, **options}
    body["all"] = body.pop("try_all")
    with connect(access.server, access.token) as api:
        result: dict[str, Any] = api.post("/checks", body)
    return result


# docker's credential helpers are asked only from here (the kubelet never runs one): a list
# that starts with one follows docker's order for it, then the kubelet's for the file.
_HELPER_SOURCE = "docker-credential-"


def _order_heading(attempts: list[dict[str, Any]]) -> str:
    if not attempts[0]["source"].startswith(_HELPER_SOURCE):
        return "credentials, in the order the kubelet tries them:"
    return (
        "credentials: docker's credential helper first, as docker asks it (the kubelet never "
        "runs helpers), then config.json's entries in the order the kubelet tries them:"
    )


def render(r: dict[str, Any]) -> str:
    lines = [f"image:       {r['reference']}"]
    if r.get("rewritten"):
        lines.append(f"rewritten:   {r['image']} is pulled as {r['pulled']} (the default registry)")
    lines += [f"warning:     {w}" for w in r.get("warnings") or []]
    attempts = r["attempts"]
    if r["from_node"]:
        lines.append(
            "from node:   uses only the image already on the node; the registry is not asked"
        )
    elif r["error"] and r["error"]["cause"] == "not_allowed":
        lines.append(f"not allowed: {r['error']['message']}")
    elif len(attempts) == 1 and attempts[0]["source"] == "anonymous":
        a = attempts[0]
        lines.append("credentials: none match this image; the kubelet pulls it anonymously")
        lines.append(f"  anonymous: {'works' if a['ok'] else a['message']}")
    elif attempts:
        lines.append(_order_heading(attempts))
        for i, a in enumerate(attempts, 1):
            who = f"{a['username']}@{a['registry']}" if a["username"] else a["registry"]
            verdict = "works" if a["ok"] else f"fails: {a['message']}"
            lines.append(f"  {i}. {a['source']} ({who}): {verdict}")
        if r["not_tried"]:
            works = any(a["ok"] for a in attempts)
            why = "the kubelet stops at the first that works" if works else "unreachable"
            untried = ", ".join(r["untried"])
            lines.append(f"  ({r['not_tried']} more not tried: {untried}; {why})")
    node = r.get("node_profile")
    if node:
        tried = any(a["source"] != "anonymous" for a in attempts)
        lines += route_lines(node, 13, credentials=tried)
        if node["mirrors"]:
            lines.append(f"  (this check asks {node['registry']} itself, not the mirrors)")
    if r["digest"]:
        lines.append(f"digest:      {r['digest']}")
        lines.append(f"platforms:   {', '.join(r['platforms']) or 'unknown'}")
    if r["platform"]:
        if r["platform_available"]:
            lines.append(f"platform:    {r['platform']} is available ({r['platform_digest']})")
        elif r["platform_available"] is False:
            lines.append(f"platform:    {r['platform']} is NOT available")
    lines.append(f"pull policy: {r['pull_policy']}")
    why = r["error"]["message"] if r["error"] else "no credential works"
    lines.append("result:      " + ("can pull" if r["ok"] else f"cannot pull: {why}"))
    return "\n".join(lines)
