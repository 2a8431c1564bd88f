"""Trusting a registry's TLS certificate on this host: what it presents, and storing its root.

The use cases of `pullkeeper registry trust` over the TLS adapter (registry/trust.py), the
judgement of certificates (core/certificates.py) and the certs.d files (registry/ca_files.py):
the face asks, formats and prints; this module fetches, judges and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from pullkeeper.core import certificates
from pullkeeper.core.certificates import Assessment, CertificateInfo
from pullkeeper.registry import ca_files
from pullkeeper.registry import trust as tls
from pullkeeper.registry.trust import Target, TrustError

__all__ = ["Assessment", "CertificateInfo", "Presented", "Target", "TrustError", "inspect"]


@dataclass(frozen=True, slots=True)
class Presented:
    """The chain a registry presented (leaf first), judged for its host."""

    target: Target
    chain: list[x509.Certificate]
    report: Assessment
    # Fingerprints of what is trusted for the target now, under the directory given.
    trusted_now: list[str]

    @property
    def anchor(self) -> CertificateInfo:
        return self.report.certificates[self.report.anchor]

    def pem(self, index: int | None = None) -> str:
        """The whole chain as PEM, or one certificate of it."""
        return certificates.to_pem(self.chain if index is None else [self.chain[index]])

    def store(self, own: Path, certs_d: Path | None = None) -> list[Path]:
        """Trust the anchor: own/NAME/ca.crt and, if given, certs_d/NAME/ca.crt."""
        return ca_files.store(self.chain[self.report.anchor], self.target, own, certs_d)


def inspect(address: str, timeout: float, own: Path) -> Presented:
    """Connect to HOST[:PORT] without verifying and judge what it presents; TrustError when
    the address is bad or no TLS chain comes back."""
    target = tls.parse_target(address)
    chain = tls.fetch_chain(target, timeout)
    report = certificates.assess(chain, target.host, datetime.now(UTC))
    return Presented(target, chain, report, ca_files.trusted_fingerprints(own, target))
