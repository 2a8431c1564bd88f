"""`pullkeeper deploy` and `pullkeeper attach`: workloads with exactly the pull secrets their
images need, and the rollout read back as it happens."""

from __future__ import annotations

import time
from typing import Any

import click

from pullkeeper.cli import check
from pullkeeper.cli.common import CLIError
from pullkeeper.cli.remote import Remote, seg
from pullkeeper.cli.render import emit, output_option
from pullkeeper.cli.session import with_api

EXIT_FAILED = 1
POLL_SECONDS = 0.5


def _cluster(api: Remote, given: str | None) -> str:
    """The cluster given, or the only one the server has."""
    if given:
        return given
    names = [c["name"] for c in api.get("/clusters")["items"]]
    if len(names) == 1:
        return str(names[0])
    if not names:
        raise CLIError("the server knows no cluster; register one with `pullkeeper cluster create`")
    raise CLIError(f"the server has {len(names)} clusters ({', '.join(names)}): give --cluster")


def _base(cluster: str, namespace: str) -> str:
    return f"/clusters/{seg(cluster)}/namespaces/{seg(namespace)}/workloads"


def _secrets_line(result: dict[str, Any]) -> str:
    secrets = result["image_pull_secrets"]
    if not secrets:
        return "imagePullSecrets: none (no credential matches its images: pulled anonymously)"
    return f"imagePullSecrets: {', '.join(secrets)}"


def _warn_missing(result: dict[str, Any]) -> None:
    for name in result.get("missing_secrets") or []:
        click.echo(
            f"warning: Secret {name} is not in namespace {result['namespace']} yet; "
            "the sync delivers it",
            err=True,
        )


@click.command("deploy")
@click.argument("name")
@click.option("--image", required=True, help="The container's image.")
@click.option("-n", "--namespace", required=True, help="The namespace to deploy into.")
@click.option("--cluster", help="The cluster (name or id); needed when the server has several.")
@click.option(
    "--replicas", type=click.IntRange(0, 1000), default=1, show_default=True, help="Pods to run."
)
@click.option("--port", type=click.IntRange(1, 65535), help="The container's port (TCP).")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the rollout and its pull events until it is ready or fails.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the rollout.",
)
@output_option
@with_api
def deploy(
    api: Remote,
    name: str,
    image: str,
    namespace: str,
    cluster: str | None,
    replicas: int,
    port: int | None,
    wait: bool,
    timeout: float,
    output: str,
) -> None:
    """Deploy NAME (a Deployment, labels app=NAME) whose pods carry exactly the pull secrets
    the kubelet would use for IMAGE in the namespace, then follow the rollout.

    Exit status 0 when the rollout is ready, 1 when it failed (an image that cannot be
    pulled, with pullkeeper's own check of why) or did not finish within --timeout.
    """
    where = _cluster(api, cluster)
    body = {"name": name, "image": image, "replicas": replicas, "port": port}
    created = api.post(_base(where, namespace), body)
    if not wait:
        if not emit(created, output):
            click.echo(_created(created))
        _warn_missing(created)
        return
    if output == "text":
        click.echo(_created(created))
    _warn_missing(created)
    final = _follow(api, where, namespace, name, timeout, printing=output == "text")
    if not emit(final, output):
        click.echo(_verdict(final, timeout))
    if final["state"] != "ready":
        raise SystemExit(EXIT_FAILED)


def _created(r: dict[str, Any]) -> str:
    return (
        f"deployment {r['name']} created in namespace {r['namespace']} of cluster "
        f"{r['cluster']} ({r['replicas']} replica{'s' if r['replicas'] != 1 else ''})\n"
        + _secrets_line(r)
    )


def _follow(
    api: Remote, cluster: str, namespace: str, name: str, timeout: float, *, printing: bool
) -> dict[str, Any]:
    """Poll the rollout, printing each new event, until ready, failed or out of time."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    path = f"{_base(cluster, namespace)}/{seg(name)}"
    while True:
        status: dict[str, Any] = api.get(path)
        for e in status["events"]:
            if seen.get(e["id"]) == e["count"]:
                continue
            seen[e["id"]] = e["count"]
            if printing:
                click.echo(_event(e))
        if status["state"] != "progressing":
            return status
        if time.monotonic() >= deadline:
            status["state"] = "timeout"
            return status
        time.sleep(POLL_SECONDS)


def _event(e: dict[str, Any]) -> str:
    times = f" (x{e['count']})" if e["count"] > 1 else ""
    return f"  {e['type']:<7} {e['reason']:<16} {e['object']}: {e['message']}{times}"


def _verdict(s: dict[str, Any], timeout: float) -> str:
    counts = f"{s['ready']}/{s['replicas']} replicas ready"
    if s["state"] == "ready":
        return f"deployment {s['name']} is ready: {counts}"
    if s["state"] == "timeout":
        return f"deployment {s['name']} is not ready after {timeout:g} s: {counts}"
    lines = [f"deployment {s['name']} failed: {s['reason']}"]
    for d in s["diagnosis"]:
        lines.append(f"pullkeeper's diagnosis of {d['image']}:")
        if d["check"] is None:
            lines.append(f"  {d['message']}")
            continue
        lines.extend(f"  {line}" for line in check.render(d["check"]).splitlines())
        if d["ok"]:
            lines.append(f"  {d['message']}")
    return "\n".join(lines)


@click.command("attach")
@click.argument("workload", metavar="KIND/NAME")
@click.option("-n", "--namespace", required=True, help="The workload's namespace.")
@click.option("--cluster", help="The cluster (name or id); needed when the server has several.")
@output_option
@with_api
def attach(api: Remote, workload: str, namespace: str, cluster: str | None, output: str) -> None:
    """Add to KIND/NAME (deployment/, statefulset/ or daemonset/) the pull secrets its images
    need that it lacks. Entries it already has stay, in their order; nothing is written when
    nothing is missing."""
    kind, slash, name = workload.partition("/")
    if not slash or not kind or not name:
        raise CLIError(
            f"{workload!r} is not KIND/NAME: write deployment/NAME, statefulset/NAME "
            "or daemonset/NAME"
        )
    where = _cluster(api, cluster)
    result = api.post(f"{_base(where, namespace)}/{seg(kind)}/{seg(name)}/attach")
    if emit(result, output):
        return
    label = f"{result['kind'].lower()}/{result['name']}"
    if result["added"]:
        click.echo(f"{label}: added {', '.join(result['added'])}")
    else:
        click.echo(f"{label}: nothing to add; it has every Secret its images need")
    click.echo(_secrets_line(result))
    _warn_missing(result)
