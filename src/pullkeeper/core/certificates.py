"""A TLS certificate chain judged for a registry host, without any I/O.

What a user needs to see before trusting what a registry presents: each certificate's
subject, issuer, fingerprint, validity, names and whether it is a self-signed CA; whether
the host matches the leaf as Go-based clients (docker, containerd, podman, skopeo) judge
it; and what in the chain those clients will refuse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding


def as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """host as an IP address; None when it is a DNS name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class CertificateInfo:
    """What a user needs to see before trusting a certificate."""

    subject: str  # RFC 4514
    issuer: str
    sha256: str  # as `openssl x509 -fingerprint -sha256`: AB:CD:...
    not_before: datetime
    not_after: datetime
    validity: str  # "valid", "expired" or "not yet valid"
    names: tuple[str, ...]  # subject alternative names: "DNS:x", "IP:1.2.3.4", ...
    self_signed: bool
    ca: bool


@dataclass(frozen=True)
class Assessment:
    """A presented chain, described: which certificate to store, and what looks wrong."""

    certificates: tuple[CertificateInfo, ...]
    anchor: int  # index of the certificate to store: the chain's last
    host_matches: bool
    warnings: tuple[str, ...]


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as OpenSSL prints it: colon-separated upper-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string() or "(empty)"
    except ValueError:
        return "(unreadable)"


def _alt_names(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):  # absent, or malformed extensions
        return None


def _san_strings(san: x509.SubjectAlternativeName | None) -> tuple[str, ...]:
    if san is None:
        return ()
    out: list[str] = []
    for gn in san:
        if isinstance(gn, x509.DNSName):
            out.append(f"DNS:{gn.value}")
        elif isinstance(gn, x509.IPAddress):
            out.append(f"IP:{gn.value}")
        elif isinstance(gn, x509.UniformResourceIdentifier):
            out.append(f"URI:{gn.value}")
        elif isinstance(gn, x509.RFC822Name):
            out.append(f"email:{gn.value}")
        else:
            out.append(type(gn).__name__)
    return tuple(out)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def describe(cert: x509.Certificate, now: datetime) -> CertificateInfo:
    """Subject, issuer, fingerprint, validity at `now`, names, and whether self-signed."""
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > not_after:
        validity = "expired"
    elif now < not_before:
        validity = "not yet valid"
    else:
        validity = "valid"
    return CertificateInfo(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        sha256=fingerprint(cert),
        not_before=not_before,
        not_after=not_after,
        validity=validity,
        names=_san_strings(_alt_names(cert)),
        self_signed=cert.issuer == cert.subject and _issued_by(cert, cert),
        ca=_is_ca(cert),
    )


def _dns_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        # As Go's crypto/x509 (docker, containerd, podman, skopeo): a wildcard stands
        # for exactly one whole leftmost label.
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == host


def host_matches(cert: x509.Certificate, host: str) -> bool:
    """Whether `host` (a DNS name or an IP) is among the certificate's SANs.

    Only subject alternative names count: Go clients ignore the common name since Go 1.15.
    """
    san = _alt_names(cert)
    if san is None:
        return False
    ip = as_ip(host)
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    return any(_dns_matches(p, host) for p in san.get_values_for_type(x509.DNSName))


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def assess(chain: Sequence[x509.Certificate], host: str, now: datetime) -> Assessment:
    """Describe a presented chain (leaf first) for `host`, with its problems."""
    infos = tuple(describe(c, now) for c in chain)
    warnings: list[str] = []
    leaf = infos[0]
    matches = host_matches(chain[0], host)
    kind = "IP" if as_ip(host) is not None else "DNS"
    if not leaf.names:
        warnings.append(
            "the leaf certificate has no subject alternative names, so Go-based clients "
            "(docker, containerd, podman, skopeo) refuse it for any host, trusted or not; "
            f"reissue it with {kind}:{host}"
        )
    elif not matches:
        warnings.append(
            f"{host} does not match the leaf certificate, which is for "
            f"{', '.join(leaf.names)}; clients will refuse the connection even once it is "
            f"trusted: reissue it with {kind}:{host}, or connect by one of its names"
        )
    for i, info in enumerate(infos):
        if info.validity == "expired":
            warnings.append(
                f"certificate [{i}] ({info.subject}) expired on {_when(info.not_after)}; "
                "clients will refuse it: renew it on the registry"
            )
        elif info.validity == "not yet valid":
            warnings.append(
                f"certificate [{i}] ({info.subject}) is not valid before "
                f"{_when(info.not_before)}; check the clocks of the registry and this host"
            )
    for i in range(len(chain) - 1):
        if not _issued_by(chain[i], chain[i + 1]):
            warnings.append(
                f"certificate [{i}] was not issued by certificate [{i + 1}]: the server "
                "sends a broken or out-of-order chain, which clients may fail to verify"
            )
    return Assessment(infos, len(infos) - 1, matches, tuple(warnings))


def to_pem(certs: Sequence[x509.Certificate]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


def fingerprints(pem: bytes) -> list[str]:
    """The fingerprints of the certificates in a PEM bundle; ValueError when it is not one."""
    return [fingerprint(c) for c in x509.load_pem_x509_certificates(pem)]
