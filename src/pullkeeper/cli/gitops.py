"""`pullkeeper render`: the Secrets pullkeeper delivers, as manifests for GitOps."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import click
import yaml

from pullkeeper.cli.common import CLIError, warn
from pullkeeper.cli.remote import Remote, seg
from pullkeeper.cli.session import with_api
from pullkeeper.core.manifest import to_json


@click.command("render")
@click.option("--cluster", help="Cluster name or id (default: the only one there is).")
@click.option("-n", "--namespace", help="Only this namespace.")
@click.option("--project", help="Only the namespaces of this project.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one file per namespace (NAMESPACE.yaml, mode 0600) into this directory.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="YAML documents, or one JSON List.",
)
@with_api
def render(
    api: Remote,
    cluster: str | None,
    namespace: str | None,
    project: str | None,
    out: Path | None,
    output: str,
) -> None:
    """Print the Secrets of every namespace pullkeeper knows, for `kubectl apply -f -`.

    Works from the server's store alone, without reaching the cluster: the
    namespaces are those registered or discovered, with their recorded project.
    The output holds secrets: admins may render a cluster, project owners their
    projects' namespaces; every render is audited.
    """
    if namespace and project:
        raise CLIError("--namespace and --project exclude each other")
    if not cluster:
        clusters = api.get("/clusters")["items"]
        if len(clusters) != 1:
            names = ", ".join(c["name"] for c in clusters) or "none"
            raise CLIError(f"say which cluster with --cluster (there are: {names})")
        cluster = clusters[0]["name"]
    params = {k: v for k, v in (("namespace", namespace), ("project", project)) if v}
    rendered = api.get(f"/clusters/{seg(cluster)}/render", params)
    for c in rendered["collisions"]:
        warn(
            f"{c['namespace']}/{c['name']}: credential {c['refused']} has the same name as "
            f"{c['kept']}, which a narrower scope puts there; it is left out"
        )
    for note in rendered.get("notes", []):
        warn(note)
    items = rendered["items"]
    if out is None:
        click.echo(_text(items, output), nl=False)
        return
    by_namespace: dict[str, list[dict[str, Any]]] = {n: [] for n in rendered["namespaces"]}
    for item in items:
        by_namespace.setdefault(item["metadata"]["namespace"], []).append(item)
    written = _write_all(out, by_namespace, output)
    click.echo(f"wrote {len(items)} objects in {written} files under {out}", err=True)


def _text(items: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return to_json({"apiVersion": "v1", "kind": "List", "items": items}) + "\n"
    return "".join(
        "---\n" + yaml.safe_dump(i, sort_keys=False, default_flow_style=False) for i in items
    )


def _write_all(out: Path, by_namespace: dict[str, list[dict[str, Any]]], output: str) -> int:
    """Every namespace's file, each replaced atomically; a namespace with nothing gets none
    (and loses a file a previous render wrote)."""
    suffix = ".json" if output == "json" else ".yaml"
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        written = 0
        for ns, items in sorted(by_namespace.items()):
            path = out / f"{ns}{suffix}"
            if not items:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            fd, tmp = tempfile.mkstemp(prefix=f".{ns}-", suffix=".tmp", dir=out)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
                    f.write(_text(items, output))
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            written += 1
    except OSError as e:
        raise CLIError(f"cannot write into {out}: {e}") from None
    return written
