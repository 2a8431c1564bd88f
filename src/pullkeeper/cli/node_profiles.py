"""`pullkeeper node profile|status`: a cluster's node profiles on the server, and what each
node's agent last reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pullkeeper.cli.common import CLIError
from pullkeeper.cli.remote import Remote, seg
from pullkeeper.cli.render import details, emit, output_option, rows_table, when
from pullkeeper.cli.session import with_api
from pullkeeper.core.nodeconfig.profile import ProfileError
from pullkeeper.core.nodeconfig.selection import labels_from

__all__ = ["profile", "status"]

# What a profile file given to create/update may hold: what `show -o yaml` prints.
_FIELDS = ("description", "node_selector", "registries", "credentials", "mirror_default_registry")


def _cluster(f: Any) -> Any:
    return click.option("--cluster", "cluster_name", required=True, help="The cluster.")(f)


def _spec_options(f: Any) -> Any:
    options = [
        click.option(
            "--file",
            "profile_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="YAML or JSON with registries (as a node profile file has them), and "
            "node_selector, credentials, mirror_default_registry, description.",
        ),
        click.option(
            "--selector",
            multiple=True,
            metavar="KEY=VALUE",
            help="Only nodes with this label (repeatable; all must match). Replaces the file's.",
        ),
        click.option(
            "--credential",
            "credential_names",
            multiple=True,
            metavar="NAME",
            help="A credential of cluster scope whose login the nodes get (repeatable). "
            "Replaces the file's.",
        ),
        click.option(
            "--mirror-default-registry/--no-mirror-default-registry",
            default=None,
            help="The cluster policy's default registry as Docker Hub's first mirror.",
        ),
        click.option("--description"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _read(path: Path) -> dict[str, Any]:
    import yaml  # noqa: PLC0415 - only when a file is given

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"{path}: cannot be read ({e.__class__.__name__})") from None
    except (yaml.YAMLError, RecursionError):  # PyYAML recurses once per nesting level
        raise CLIError(f"{path}: is not YAML or JSON (or is nested too deeply)") from None
    if not isinstance(doc, dict):
        raise CLIError(f"{path}: is a mapping with registries (and node_selector, credentials)")
    if "logins" in doc:
        raise CLIError(
            f"{path}: logins: on the server a node's logins are credentials of cluster scope: "
            "create them (`pullkeeper credential create --scope cluster`) and name them "
            "with --credential"
        )
    unknown = sorted(set(doc) - set(_FIELDS) - {"name"})
    if unknown:
        raise CLIError(f"{path}: {unknown[0]}: is not a field of a node profile")
    return {k: v for k, v in doc.items() if k in _FIELDS}


def _given(
    profile_file: Path | None,
    selector: tuple[str, ...],
    credential_names: tuple[str, ...],
    mirror_default_registry: bool | None,
    description: str | None,
) -> dict[str, Any]:
    """The fields the options set (a file's first, the flags over them)."""
    out = _read(profile_file) if profile_file else {}
    if selector:
        try:
            out["node_selector"] = labels_from(selector, "--selector")
        except ProfileError as e:
            raise CLIError(f"{e.field}: {e.message}") from None
    if credential_names:
        out["credentials"] = list(credential_names)
    if mirror_default_registry is not None:
        out["mirror_default_registry"] = mirror_default_registry
    if description is not None:
        out["description"] = description
    return out


def _path(cluster: str, name: str = "") -> str:
    base = f"/clusters/{seg(cluster)}/node-profiles"
    return f"{base}/{seg(name)}" if name else base


def _selector(p: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in p["node_selector"].items()) or "(every node)"


def _show(p: dict[str, Any]) -> None:
    click.echo(
        details(
            [
                ("name", p["name"]),
                ("description", p["description"]),
                ("nodes", _selector(p)),
                ("registries", [r["host"] for r in p["registries"]]),
                ("credentials", p["credentials"]),
                ("missing", p["missing_credentials"]),
                (
                    "hub mirror",
                    "the policy's default registry" if p["mirror_default_registry"] else "",
                ),
                ("version", p["version"]),
                ("updated", f"{when(p['updated_at'])} by {p['updated_by']}"),
            ]
        )
    )


@click.group()
def profile() -> None:
    """A cluster's node profiles: registries' CAs, insecure hosts and mirrors, and the
    credentials whose logins its nodes get (admins change them). A node gets the profile
    whose --selector names the most of its labels."""


@profile.command("list")
@_cluster
@output_option
@with_api
def profile_list(api: Remote, cluster_name: str, output: str) -> None:
    """The cluster's node profiles."""
    result = api.get(_path(cluster_name))
    if emit(result, output):
        return
    rows = [
        [
            p["name"],
            _selector(p),
            [r["host"] for r in p["registries"]],
            p["credentials"],
            p["version"],
        ]
        for p in result["items"]
    ]
    headers = ["NAME", "NODES", "REGISTRIES", "CREDENTIALS", "VERSION"]
    click.echo(rows_table(headers, rows, "No node profiles."))


@profile.command("show")
@click.argument("name")
@_cluster
@output_option
@with_api
def profile_show(api: Remote, name: str, cluster_name: str, output: str) -> None:
    """A node profile; `-o yaml` prints it as `create --file` reads it."""
    found = api.get(_path(cluster_name, name))
    if output == "yaml":
        emit({k: found[k] for k in ("name", *_FIELDS)}, output)
    elif not emit(found, output):
        _show(found)


@profile.command("create")
@click.argument("name")
@_cluster
@_spec_options
@output_option
@with_api
def profile_create(api: Remote, name: str, cluster_name: str, output: str, **spec: Any) -> None:
    """Create a node profile from a file and/or the options."""
    created = api.post(_path(cluster_name), {"name": name, **_given(**spec)})
    if not emit(created, output):
        click.echo(f"node profile {name} of cluster {cluster_name} created")


@profile.command("update")
@click.argument("name")
@_cluster
@click.option("--rename", metavar="NEW", help="A new name.")
@_spec_options
@output_option
@with_api
def profile_update(
    api: Remote, name: str, cluster_name: str, rename: str | None, output: str, **spec: Any
) -> None:
    """Change what the file and options give; the rest is kept. Refused when someone else
    changed the profile meanwhile."""
    current, tag = api.get_tagged(_path(cluster_name, name))
    body = {k: current[k] for k in _FIELDS} | _given(**spec) | {"name": rename or name}
    written = api.write("PUT", _path(cluster_name, name), body, tag)
    if not emit(written, output):
        click.echo(f"node profile {written['name']} of cluster {cluster_name} updated")


@profile.command("delete")
@click.argument("name")
@_cluster
@with_api
def profile_delete(api: Remote, name: str, cluster_name: str) -> None:
    """Delete a node profile: its nodes' agents remove the files it made at their next pass
    (or take the next profile that selects them)."""
    api.delete(_path(cluster_name, name))
    click.echo(f"node profile {name} of cluster {cluster_name} deleted")


@click.command("status")
@_cluster
@output_option
@with_api
def status(api: Remote, cluster_name: str, output: str) -> None:
    """What each node's agent last reported: applied, drifted or failed."""
    result = api.get(f"/clusters/{seg(cluster_name)}/nodes")
    if emit(result, output):
        return
    rows = [
        [s["node"], s["profile"], s["state"], when(s["reported_at"]), s["detail"]]
        for s in result["items"]
    ]
    headers = ["NODE", "PROFILE", "STATE", "REPORTED", "DETAIL"]
    click.echo(rows_table(headers, rows, "No node has reported."))
