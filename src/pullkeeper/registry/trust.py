"""A registry's address (HOST[:PORT]) and the TLS chain it presents, read unverified.

Trusting a registry's own certificate the way Docker's certs.d does starts here (trust on
first use): the chain is fetched without verifying it, judged (core/certificates.py), and
its last certificate stored (registry/ca_files.py). A failed verification is diagnosed
from the same chain (registry/diagnose.py).

Python 3.11's ssl module hands out only the peer's leaf certificate, so the handshake
runs through pyOpenSSL, over memory BIOs: the socket I/O is ours, which bounds every
step by one deadline and lets us see the server's first bytes (a plain-HTTP server
answers a ClientHello with `HTTP/1.x 400`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import time
from dataclasses import dataclass

from cryptography import x509
from OpenSSL import SSL

from pullkeeper.core.certificates import as_ip
from pullkeeper.core.egress import EgressPolicy
from pullkeeper.registry.egress import EgressRefused, allowed_addresses

__all__ = ["Target", "TrustError", "fetch_chain", "parse_target"]

_DEFAULT_PORT = 443

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
        return as_ip(self.host) is not None

    @property
    def address(self) -> str:
        """`HOST:PORT`, with an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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
        if not isinstance(as_ip(host), ipaddress.IPv6Address):
            raise bad(f"{host!r} in brackets is not an IPv6 address")
    elif not host:
        raise bad("the host is empty")
    elif not _DOMAIN_NAME.fullmatch(host):
        raise bad(f"{host!r} is not a host name or an IP address")
    elif len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
        raise bad("a DNS name has at most 253 characters, in labels of at most 63")
    port = _DEFAULT_PORT
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad(f"the port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    return Target(host=host, port=port, name=text)


# --------------------------------------------------------------------------- fetching


def fetch_chain(
    target: Target, timeout: float, egress: EgressPolicy | None = None
) -> list[x509.Certificate]:
    """The certificates the server presents, leaf first, unverified; with an egress policy,
    read only from an address it allows."""
    deadline = time.monotonic() + timeout
    try:
        # Every connection goes to this one address: a second lookup could point elsewhere.
        peer = allowed_addresses(egress, target.host, target.port)[0] if egress else target.host
        sock = socket.create_connection((peer, target.port), timeout=timeout)
    except EgressRefused as e:
        raise TrustError(e.sentence) from None
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
        return _handshake(sock, target, peer, deadline, timeout)


def _handshake(
    sock: socket.socket, target: Target, peer: str, deadline: float, timeout: float
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
                raise _not_tls(target, peer, first, timeout, _ssl_reason(e)) from None
            else:
                _send_pending(conn, sock, deadline)  # TLS 1.3: the client's Finished
                break
            _send_pending(conn, sock, deadline)
            data = _recv(sock, deadline)
            if not data:
                raise _not_tls(target, peer, first, timeout, "the server closed the connection")
            first = (first + data)[:16]
            if first.startswith(b"HTTP/"):
                raise _plain_http(target)
            conn.bio_write(data)
    except TimeoutError:
        if first:
            what = f"the TLS handshake with {target.address} did not finish"
        elif _answers_plain_http(target, peer, timeout):
            raise _plain_http(target) from None
        else:
            what = f"{target.address} accepted the connection but sent no TLS handshake"
        raise TrustError(
            f"{what} within {timeout:g} s; check that port {target.port} is the registry's "
            "HTTPS port, or allow a longer timeout"
        ) from None
    except OSError as e:  # reset or broken pipe half-way through
        raise _not_tls(target, peer, first, timeout, e.strerror or str(e)) from None
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


def _not_tls(target: Target, peer: str, first: bytes, timeout: float, reason: str) -> TrustError:
    # A TLS server's records start with a content type from 20 to 24; anything else,
    # or silence, may be an HTTP server that answered nothing sensible yet: ask it.
    if first.startswith(b"HTTP/") or (
        (not first or not 20 <= first[0] <= 24) and _answers_plain_http(target, peer, timeout)
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


def _answers_plain_http(target: Target, peer: str, timeout: float) -> bool:
    """Whether a fresh connection to peer answers an HTTP request in plain HTTP."""
    request = f"GET /v2/ HTTP/1.0\r\nHost: {target.address}\r\n\r\n".encode("ascii")
    try:
        with socket.create_connection((peer, target.port), timeout=min(timeout, 3.0)) as sock:
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
