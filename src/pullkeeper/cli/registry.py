"""`pullkeeper registry`: container registries as seen from this host."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pullkeeper.cli.common import CLIError, echo_json, output_option, warn
from pullkeeper.paths import certs_dir

if TYPE_CHECKING:
    from pullkeeper.services import trust as tls_trust


@click.group()
def registry() -> None:
    """Container registries as this host sees them."""


@registry.command("trust")
@click.argument("address", metavar="HOST[:PORT]")
@click.option("-y", "--yes", is_flag=True, help="Trust the certificate without asking.")
@click.option(
    "--write-certs-d",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also write DIR/HOST[:PORT]/ca.crt, e.g. /etc/docker/certs.d or /etc/containers/certs.d.",
)
@click.option(
    "--print",
    "print_pem",
    is_flag=True,
    help="Only print the presented chain as PEM; store nothing.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the connection and for the TLS handshake.",
)
@output_option
def trust(
    address: str,
    yes: bool,
    write_certs_d: Path | None,
    print_pem: bool,
    timeout: float,
    output: str,
) -> None:
    """Show the TLS certificate HOST[:PORT] presents, and trust it.

    Connects without verifying (port 443 by default), prints every certificate of the
    chain, and on confirmation stores the chain's root (a self-signed leaf itself) as
    HOST[:PORT]/ca.crt under pullkeeper's certs.d, the layout docker, containerd and
    podman read. With -o json nothing is asked: the details are printed, and the
    certificate is stored only with --yes.
    """
    if print_pem and (yes or write_certs_d is not None or output == "json"):
        raise CLIError(
            "--print only prints the certificates and stores nothing; "
            "leave out --yes, --write-certs-d and -o json"
        )
    if output == "json" and write_certs_d is not None and not yes:
        raise CLIError(
            "-o json asks no question, so storing needs --yes; check the fingerprint, "
            "then add --yes"
        )
    # Not at the top: pyOpenSSL and cryptography load to read a certificate, not for --help.
    from pullkeeper.services import trust as tls_trust  # noqa: PLC0415

    own = certs_dir()
    try:
        presented = tls_trust.inspect(address, timeout, own)
    except tls_trust.TrustError as e:
        raise CLIError(str(e)) from None
    target, report = presented.target, presented.report

    if print_pem:
        for w in report.warnings:
            warn(w)
        click.echo(presented.pem(), nl=False)
        return
    if output == "json":
        for w in report.warnings:
            warn(w)
        stored = _store(presented, own, write_certs_d) if yes else []
        echo_json(_as_json(presented, stored))
        return

    _print_report(target, report)
    for w in report.warnings:
        warn(w)
    _print_existing(presented)
    if not yes:
        if not sys.stdin.isatty():
            raise CLIError(
                f"standard input is not a terminal, so pullkeeper cannot ask before "
                f"trusting {target.address}; check the fingerprint, then add --yes"
            )
        if not click.confirm(
            f"Trust this certificate for {target.address}?", default=False, err=True
        ):
            click.echo("Not trusted; nothing was stored.", err=True)
            raise SystemExit(1)
    for path in _store(presented, own, write_certs_d):
        click.echo(f"Trusted {target.address}: wrote {path}")


def _store(presented: tls_trust.Presented, own: Path, certs_d: Path | None) -> list[Path]:
    from pullkeeper.services.trust import TrustError  # noqa: PLC0415 - loaded: a chain was read

    try:
        return presented.store(own, certs_d)
    except TrustError as e:
        raise CLIError(str(e)) from None


def _role(report: tls_trust.Assessment, i: int) -> str:
    if i == 0:
        return "leaf"
    if i == report.anchor and report.certificates[i].self_signed:
        return "root"
    return "intermediate" if i < report.anchor else "last presented"


def _when(info: tls_trust.CertificateInfo, which: str) -> str:
    moment = info.not_before if which == "before" else info.not_after
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if which == "after" and info.validity == "expired":
        text += "  (EXPIRED)"
    elif which == "before" and info.validity == "not yet valid":
        text += "  (not yet valid)"
    return text


def _print_report(target: tls_trust.Target, report: tls_trust.Assessment) -> None:
    n = len(report.certificates)
    click.echo(f"{target.address} presented {n} certificate{'s' if n > 1 else ''}:")
    for i, info in enumerate(report.certificates):
        click.echo(f"\n[{i}] {_role(report, i)}")
        rows = [
            ("subject", info.subject),
            ("issuer", info.issuer),
            ("SHA-256", info.sha256),
            ("not before", _when(info, "before")),
            ("not after", _when(info, "after")),
            ("names", ", ".join(info.names) or "(none)"),
            ("self-signed", "yes" if info.self_signed else "no"),
            ("CA", "yes" if info.ca else "no"),
        ]
        for label, value in rows:
            click.echo(f"    {label:<12} {value}")
    click.echo()
    if report.host_matches:
        click.echo(f"{target.host} matches the leaf certificate's names.")
    else:
        click.echo(f"{target.host} does NOT match the leaf certificate's names.")
    anchor = report.certificates[report.anchor]
    if report.anchor == 0 and anchor.self_signed:
        why = "the self-signed leaf"
    elif anchor.self_signed:
        why = "the root of the chain"
    else:
        # Go clients accept any certificate in their pool as an anchor, self-signed or not.
        why = "the last certificate presented; the server did not send a self-signed root"
    click.echo(f"Certificate to trust: [{report.anchor}], {why}.")


def _print_existing(presented: tls_trust.Presented) -> None:
    existing, target = presented.trusted_now, presented.target
    if not existing:
        return
    if presented.anchor.sha256 in existing:
        click.echo(f"It is already trusted for {target.name}.")
    else:
        warn(
            f"a different certificate is trusted for {target.name} now (SHA-256 "
            f"{existing[0]}); trusting this one replaces it: make sure the registry's "
            "certificate really changed"
        )


def _as_json(presented: tls_trust.Presented, stored: list[Path]) -> dict[str, Any]:
    target, report = presented.target, presented.report
    certificates = [
        {
            "subject": info.subject,
            "issuer": info.issuer,
            "sha256": info.sha256,
            "not_before": info.not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validity": info.validity,
            "names": list(info.names),
            "self_signed": info.self_signed,
            "ca": info.ca,
            "pem": presented.pem(i),
        }
        for i, info in enumerate(report.certificates)
    ]
    return {
        "address": target.address,
        "name": target.name,
        "host_matches": report.host_matches,
        "certificates": certificates,
        "trust": report.anchor,
        "warnings": list(report.warnings),
        "stored": [str(p) for p in stored],
    }
