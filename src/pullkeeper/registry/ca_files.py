"""Trusted registry CAs on disk, in the certs.d layout docker, containerd and podman read.

A trusted certificate is stored as `HOST[:PORT]/ca.crt` under pullkeeper's own certs.d
and, when asked, under a runtime's (`/etc/docker/certs.d`, `/etc/containers/certs.d`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

    from pullkeeper.registry.trust import Target

__all__ = ["ca_file", "store", "trusted_fingerprints"]

_CA_FILE = "ca.crt"
# pullkeeper's own store is private to the user; a runtime's certs.d must stay readable
# by daemons and rootless podman alike. A CA certificate is public: the file is 0644.
_OWN_DIR_MODE = 0o700
_CERTS_D_DIR_MODE = 0o755
_FILE_MODE = 0o644


def ca_file(base: Path, host: str) -> Path | None:
    """The CA file stored for a registry host (`HOST[:PORT]`) under `base`, if any."""
    path = base / host / _CA_FILE
    return path if path.is_file() else None


def trusted_fingerprints(base: Path, target: Target) -> list[str]:
    """Fingerprints of the certificates already stored for `target` under `base`."""
    # Not at the top: a registry client that only looks up ca_file never loads cryptography.
    from pullkeeper.core.certificates import fingerprints  # noqa: PLC0415

    try:
        return fingerprints((base / target.name / _CA_FILE).read_bytes())
    except (OSError, ValueError):
        return []


def store(
    cert: x509.Certificate, target: Target, own: Path, certs_d: Path | None = None
) -> list[Path]:
    """Write `cert` as `own/NAME/ca.crt` and, if given, `certs_d/NAME/ca.crt`.

    Each file is written to a temporary file and renamed; all files are staged before
    any is renamed, so a directory that cannot be written leaves every file as it was.
    """
    # Not at the top: a registry client that only looks up ca_file never loads cryptography.
    from pullkeeper.core.certificates import to_pem  # noqa: PLC0415
    from pullkeeper.registry.trust import TrustError  # noqa: PLC0415

    pem = to_pem([cert]).encode("ascii")
    plan = [(own, _OWN_DIR_MODE, "set PULLKEEPER_CERTS_DIR to a directory you can write")]
    if certs_d is not None:
        hint = "run as root for a system certs.d, or choose a directory you can write"
        plan.append((certs_d, _CERTS_D_DIR_MODE, hint))
    staged: list[tuple[str, Path]] = []
    try:
        for base, mode, hint in plan:
            directory = base / target.name
            if base.exists() and not base.is_dir():
                raise TrustError(
                    f"cannot write {directory / _CA_FILE}: {base} is not a directory; {hint}"
                )
            try:
                base.mkdir(mode=mode, parents=True, exist_ok=True)
                directory.mkdir(mode=mode, exist_ok=True)
                staged.append((_stage(directory, pem), directory / _CA_FILE))
            except OSError as e:
                raise TrustError(
                    f"cannot write {directory / _CA_FILE}: {e.strerror or e}; {hint}"
                ) from None
        for tmp, final in staged:
            try:
                os.replace(tmp, final)
            except OSError as e:
                raise TrustError(f"cannot write {final}: {e.strerror or e}") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return [final for _, final in staged]


def _stage(directory: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=".ca.crt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp
