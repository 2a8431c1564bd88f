"""Trusting a registry's own TLS certificate, the way Docker's certs.d does it.

The flow is trust on first use: fetch the chain the server presents without verifying
it, show the user what it is, and store the chain's last certificate (the root, or a
self-signed leaf) as `HOST[:PORT]/ca.crt`, the layout docker, containerd and podman
read under `/etc/docker/certs.d` and `/etc/containers/certs.d`.

Python 3.11's ssl module hands out only the peer's leaf certificate, so the handshake
runs through pyOpenSSL, over memory BIOs: the socket I/O is ours, which bounds every
step by one deadline and lets us see the server's first bytes (a plain-HTTP server
answers a ClientHello with `HTTP/1.x 400`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

DEFAULT_PORT = 443
CA_FILE = "ca.crt"
# pullkeeper's own store is private to the user; a runtime's certs.d must stay readable
# by daemons and rootless podman alike. A CA certificate is public: the file is 0644.
_OWN_DIR_MODE = 0o700
_CERTS_D_DIR_MODE = 0o755
_FILE_MODE = 0o644

# The host grammar of image references (distribution/reference), which is how users
# write registry addresses and how runtimes name certs.d directories:
#   host             := domain-name | IPv4address | "[" IPv6address "]"
#   domain-name      := domain-component ["." domain-component]*
#   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = re.compile(_DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*")
_HOST_PORT = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::([^:]*))?")


class TrustError(Exception):
    """Something the user can act on; str() says what was wrong and what to do."""


@dataclass(frozen=True)
class Target:
    """A registry address: the host, the port to connect to, and the name as written."""

    host: str  # a DNS name or an IP address, without brackets
    port: int
    name: str  # HOST or HOST:PORT as given: the certs.d directory name

    @property
    def is_ip(self) -> bool:
        return _ip(self.host) is not None

    @property
    def address(self) -> str:
        """`HOST:PORT`, with an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_target(text: str) -> Target:
    """Parse `HOST[:PORT]` (an IPv6 address in brackets); the port defaults to 443."""

    def bad(reason: str) -> TrustError:
        return TrustError(
            f"{text!r} is not a valid HOST[:PORT]: {reason}; "
            "give the registry as in image names, e.g. registry.example.com:5000"
        )

    if "/" in text:
        raise bad("write only the host and port, without a scheme or path")
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        if text.count(":") > 1 and not text.startswith("["):
            raise bad("an IPv6 address must be written in brackets, as [::1]:5000")
        raise bad("expected HOST or HOST:PORT")
    host, port_text = m.group(1), m.group(2)
    if host.startswith("["):
        host = host[1:-1]
        if not isinstance(_ip(host), ipaddress.IPv6Address):
            raise bad(f"{host!r} in brackets is not an IPv6 address")
    elif not host:
        raise bad("the host is empty")
    elif not _DOMAIN_NAME.fullmatch(host):
        raise bad(f"{host!r} is not a host name or an IP address")
    elif len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
        raise bad("a DNS name has at most 253 characters, in labels of at most 63")
    port = DEFAULT_PORT
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad(f"the port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    return Target(host=host, port=port, name=text)


# --------------------------------------------------------------------------- fetching


def fetch_chain(target: Target, timeout: float) -> list[x509.Certificate]:
    """The certificates the server presents, leaf first, unverified."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except socket.gaierror as e:
        raise TrustError(
            f"cannot resolve {target.host}: {e.strerror or e}; check the host name"
        ) from None
    except ConnectionRefusedError:
        raise TrustError(
            f"{target.address} refused the connection: nothing listens on port "
            f"{target.port}; check the port and that the registry is running"
        ) from None
    except TimeoutError:
        raise TrustError(
            f"connecting to {target.address} timed out after {timeout:g} s; check the "
            "address and any firewall, or allow a longer timeout"
        ) from None
    except OSError as e:
        raise TrustError(
            f"cannot connect to {target.address}: {e.strerror or e}; check the address "
            "and the network"
        ) from None
    with sock:
        return _handshake(sock, target, deadline, timeout)


def _handshake(
    sock: socket.socket, target: Target, deadline: float, timeout: float
) -> list[x509.Certificate]:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    # Nothing is verified here: the point is to show the user what the server presents.
    context.set_verify(SSL.VERIFY_NONE)
    conn = SSL.Connection(context, None)
    if not target.is_ip:  # RFC 6066: SNI carries DNS names only
        conn.set_tlsext_host_name(target.host.encode("ascii"))
    conn.set_connect_state()
    first = b""  # the server's first bytes, to recognise an answer that is not TLS
    try:
        while True:
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error as e:
                raise _not_tls(target, first, timeout, _ssl_reason(e)) from None
            else:
                _send_pending(conn, sock, deadline)  # TLS 1.3: the client's Finished
                break
            _send_pending(conn, sock, deadline)
            data = _recv(sock, deadline)
            if not data:
                raise _not_tls(target, first, timeout, "the server closed the connection")
            first = (first + data)[:16]
            if first.startswith(b"HTTP/"):
                raise _plain_http(target)
            conn.bio_write(data)
    except TimeoutError:
        if first:
            what = f"the TLS handshake with {target.address} did not finish"
        elif _answers_plain_http(target, timeout):
            raise _plain_http(target) from None
        else:
            what = f"{target.address} accepted the connection but sent no TLS handshake"
        raise TrustError(
            f"{what} within {timeout:g} s; check that port {target.port} is the registry's "
            "HTTPS port, or allow a longer timeout"
        ) from None
    except OSError as e:  # reset or broken pipe half-way through
        raise _not_tls(target, first, timeout, e.strerror or str(e)) from None
    chain = conn.get_peer_cert_chain(as_cryptography=True)
    with contextlib.suppress(SSL.Error, OSError):  # a polite close_notify, best effort
        conn.shutdown()
        _send_pending(conn, sock, deadline)
    if not chain:
        raise TrustError(
            f"{target.address} completed the TLS handshake without presenting a "
            "certificate; there is nothing to trust"
        )
    return chain


def _send_pending(conn: SSL.Connection, sock: socket.socket, deadline: float) -> None:
    while True:
        try:
            data = conn.bio_read(65536)
        except SSL.WantReadError:
            return
        sock.settimeout(_remaining(deadline))
        sock.sendall(data)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(_remaining(deadline))
    return sock.recv(65536)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _ssl_reason(error: SSL.Error) -> str:
    # pyOpenSSL carries OpenSSL's error queue as (library, function, reason) tuples.
    queue = error.args[0] if error.args else None
    if isinstance(queue, list):
        reasons = [str(item[-1]) for item in queue if isinstance(item, tuple) and item]
        if reasons:
            return ", ".join(reasons)
    return str(error) or type(error).__name__


def _not_tls(target: Target, first: bytes, timeout: float, reason: str) -> TrustError:
    # A TLS server's records start with a content type from 20 to 24; anything else,
    # or silence, may be an HTTP server that answered nothing sensible yet: ask it.
    if first.startswith(b"HTTP/") or (
        (not first or not 20 <= first[0] <= 24) and _answers_plain_http(target, timeout)
    ):
        return _plain_http(target)
    return TrustError(
        f"the TLS handshake with {target.address} failed ({reason}); check that port "
        f"{target.port} is the registry's HTTPS port"
    )


def _plain_http(target: Target) -> TrustError:
    return TrustError(
        f"{target.address} looks like a plain-HTTP registry, not TLS: there is no "
        "certificate to trust; mark it as an insecure registry instead "
        "(insecure-registries in Docker's daemon.json, insecure = true in registries.conf)"
    )


def _answers_plain_http(target: Target, timeout: float) -> bool:
    """Whether a fresh connection answers an HTTP request in plain HTTP."""
    request = f"GET /v2/ HTTP/1.0\r\nHost: {target.address}\r\n\r\n".encode("ascii")
    try:
        with socket.create_connection(
            (target.host, target.port), timeout=min(timeout, 3.0)
        ) as sock:
            sock.sendall(request)
            answer = b""
            while len(answer) < 5:
                data = sock.recv(5 - len(answer))
                if not data:
                    break
                answer += data
    except OSError:
        return False
    return answer == b"HTTP/"


# --------------------------------------------------------------------------- describing


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
    ip = _ip(host)
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
    kind = "IP" if _ip(host) is not None else "DNS"
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


def now_utc() -> datetime:
    return datetime.now(UTC)


def to_pem(certs: Sequence[x509.Certificate]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


# --------------------------------------------------------------------------- storing


def trusted_fingerprints(base: Path, target: Target) -> list[str]:
    """Fingerprints of the certificates already stored for `target` under `base`."""
    try:
        data = (base / target.name / CA_FILE).read_bytes()
        return [fingerprint(c) for c in x509.load_pem_x509_certificates(data)]
    except (OSError, ValueError):
        return []


def store(
    cert: x509.Certificate, target: Target, own: Path, certs_d: Path | None = None
) -> list[Path]:
    """Write `cert` as `own/NAME/ca.crt` and, if given, `certs_d/NAME/ca.crt`.

    Each file is written to a temporary file and renamed; all files are staged before
    any is renamed, so a directory that cannot be written leaves every file as it was.
    """
    pem = cert.public_bytes(Encoding.PEM)
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
                    f"cannot write {directory / CA_FILE}: {base} is not a directory; {hint}"
                )
            try:
                base.mkdir(mode=mode, parents=True, exist_ok=True)
                directory.mkdir(mode=mode, exist_ok=True)
                staged.append((_stage(directory, pem), directory / CA_FILE))
            except OSError as e:
                raise TrustError(
                    f"cannot write {directory / CA_FILE}: {e.strerror or e}; {hint}"
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
