"""`pullkeeper manifest`: inspect, create, annotate and push multi-architecture images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from pullkeeper.cli import candidates
from pullkeeper.cli.common import CLIError, table
from pullkeeper.cli.registry_options import RegistryAccess, config_option, registry_access
from pullkeeper.cli.render import details, emit, output_option
from pullkeeper.core.imageindex import IndexBuildError
from pullkeeper.services import manifests, pull_trial

EXIT_REGISTRY_FAILED = 1


@click.group("manifest")
def manifest() -> None:
    """Manifest lists and OCI indexes: one image name for several platforms.

    Build a list locally with `create` (and `annotate`), then `push` it. The
    images must already be in the list's registry; credentials and TLS are
    found as for `pullkeeper check`.
    """


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (manifests.ManifestInputError, IndexBuildError, pull_trial.CheckInputError) as e:
        raise CLIError(str(e)) from None
    except manifests.RegistryFailure as e:
        click.echo(f"error: {e.message}", err=True)
        raise SystemExit(EXIT_REGISTRY_FAILED) from None
    except OSError as e:
        raise CLIError(f"cannot write the local list: {e}") from None


def _lookups(access: RegistryAccess) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
    """The credentials for an image and the TLS for a registry host, as `manifests` asks."""
    tls = candidates.tls(access)
    return (lambda image: candidates.for_image(image, access)), (lambda _host: tls)


@manifest.command("inspect")
@click.argument("image")
@click.option("--raw", is_flag=True, help="Print the manifest's bytes exactly as served.")
@config_option
@registry_access
@output_option
def inspect(
    image: str,
    raw: bool,
    output: str,
    access: RegistryAccess,
) -> None:
    """The manifest list / index of IMAGE with its platforms, digests and sizes.

    A list created here and not pushed yet is shown from the local copy, as
    `docker manifest inspect` does.
    """
    tls = candidates.tls(access)
    with _errors():
        found = manifests.inspect(image, candidates.for_image(image, access), tls)
    if raw:
        click.echo(found.raw.decode("utf-8", errors="surrogateescape"), nl=False)
        return
    if emit(found.as_dict(), output):
        return
    pairs: list[tuple[str, Any]] = [
        ("name", found.reference + ("  (local, not pushed)" if found.local else "")),
        ("digest", found.digest),
        ("media type", found.media_type),
        ("size", found.size),
    ]
    if not found.is_index:
        total = sum(layer["size"] for layer in found.layers)
        pairs += [("platform", found.platform), ("layers", f"{len(found.layers)}, {total} bytes")]
        click.echo(details(pairs))
        return
    click.echo(details(pairs))
    rows = [
        [m["platform"] or "-", m["digest"], str(m["size"]), m["media_type"]]
        for m in found.manifests
    ]
    click.echo()
    click.echo(table(["PLATFORM", "DIGEST", "SIZE", "MEDIA TYPE"], rows))


@manifest.command("create")
@click.argument("name", metavar="LIST")
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True)
@click.option("--amend", is_flag=True, help="Add to a local list that exists already.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["auto", "oci", "docker"]),
    default="auto",
    show_default=True,
    help="OCI index or Docker manifest list; auto: Docker when every image is Docker schema 2.",
)
@config_option
@registry_access
@output_option
def create(
    name: str,
    images: tuple[str, ...],
    amend: bool,
    format_: str,
    output: str,
    access: RegistryAccess,
) -> None:
    """Create a local list LIST of the IMAGEs, each with the platform its config declares."""
    found_for, tls_for = _lookups(access)
    with _errors():
        index = manifests.create(name, images, found_for, tls_for, amend=amend, format=format_)
    if not emit(index.as_dict(), output):
        click.echo(f"Created the local list {index.name} ({len(index.entries)} images):")
        click.echo(_entries_table(index))


def _entries_table(index: Any) -> str:
    rows = [[str(e.platform), e.digest, e.image] for e in index.entries]
    return table(["PLATFORM", "DIGEST", "IMAGE"], rows)


@manifest.command("annotate")
@click.argument("name", metavar="LIST")
@click.argument("image", metavar="IMAGE")
@click.option("--os", "os_name", help="Operating system, e.g. linux or windows.")
@click.option("--arch", help="Architecture, e.g. amd64 or arm64.")
@click.option("--variant", help="Architecture variant, e.g. v7 for arm.")
@click.option("--os-version", help="Operating system version (Windows builds).")
@click.option("--os-features", help="Operating system features, comma-separated (e.g. win32k).")
@output_option
def annotate(
    name: str,
    image: str,
    os_name: str | None,
    arch: str | None,
    variant: str | None,
    os_version: str | None,
    os_features: str | None,
    output: str,
) -> None:
    """Set the platform of IMAGE (as given to create, or its digest) in the local list LIST."""
    if not any(v is not None for v in (os_name, arch, variant, os_version, os_features)):
        raise CLIError(
            "nothing to annotate; give --os, --arch, --variant, --os-version or --os-features"
        )
    features = None if os_features is None else [f for f in os_features.split(",") if f]
    with _errors():
        index = manifests.annotate(
            name,
            image,
            os_name=os_name,
            arch=arch,
            variant=variant,
            os_version=os_version,
            os_features=features,
        )
    if not emit(index.as_dict(), output):
        click.echo(_entries_table(index))


@manifest.command("push")
@click.argument("name", metavar="LIST")
@click.option("--purge", is_flag=True, help="Remove the local list once pushed.")
@config_option
@registry_access
@output_option
def push(
    name: str,
    purge: bool,
    output: str,
    access: RegistryAccess,
) -> None:
    """Push the local list LIST to its registry, copying in images of other repositories."""
    found_for, tls_for = _lookups(access)
    with _errors():
        pushed = manifests.push(name, found_for, tls_for, purge=purge)
    if emit(pushed.as_dict(), output):
        return
    for image in pushed.copied:
        click.echo(f"copied {image} into the list's repository")
    click.echo(f"Pushed {pushed.name}: {pushed.digest}")


@manifest.command("rm")
@click.argument("names", metavar="LIST...", nargs=-1, required=True)
def rm(names: tuple[str, ...]) -> None:
    """Remove local lists (what is pushed stays in the registry)."""
    with _errors():
        refs = [str(manifests.list_name(n)) for n in names]
    missing = [r for r in refs if not manifests.remove(r)]
    if missing:
        raise CLIError(f"no local list {', '.join(missing)}")


@manifest.command("ls")
def ls() -> None:
    """The local lists, not pushed or kept after a push."""
    with _errors():
        rows = []
        for name in manifests.local_names():
            index = manifests.load(name)
            if index is not None:
                rows.append([index.name, str(len(index.entries)), index.media_type])
    click.echo(table(["LIST", "IMAGES", "MEDIA TYPE"], rows) if rows else "no local lists")
