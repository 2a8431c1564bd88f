"""`pullkeeper registry trust` against the real registry (distribution 2.8, self-signed TLS):
what it prints is what openssl says, and what it stores, skopeo verifies the registry with.
"""

from __future__ import annotations

import http.server
import json
import os
import pty
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from .conftest import (
    PULLKEEPER,
    RUN_TIMEOUT,
    Registry,
    Result,
    assert_one_line_error,
    b64,
    isolated_env,
    pk,
    pk_ok,
    run,
)

pytestmark = pytest.mark.integration


def certs_d(env: dict[str, str]) -> Path:
    """pullkeeper's own certs.d for an `isolated_env` (no PULLKEEPER_CERTS_DIR)."""
    return Path(env["XDG_CONFIG_HOME"]) / "pullkeeper" / "certs.d"


def openssl_fingerprint(pem_file: Path) -> str:
    out = run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(pem_file)])
    assert out.returncode == 0, out.describe()
    # OpenSSL 3 prints "sha256 Fingerprint=AB:CD:...", 1.1 "SHA256 Fingerprint=...".
    return out.stdout.strip().split("=", 1)[1]


def der_of(pem: bytes) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem)]


def authfile_for(registry: Registry, path: Path) -> Path:
    auth = b64(f"{registry.username}:{registry.password}")
    path.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    return path


def skopeo_inspect(registry: Registry, authfile: Path, cert_dir: Path) -> Result:
    return run(
        [
            "skopeo",
            "inspect",
            "--authfile",
            str(authfile),
            "--cert-dir",
            str(cert_dir),
            f"docker://{registry.image}",
        ],
        env=registry.env,
    )


def on_terminal(args: list[str], answer: bytes, env: dict[str, str]) -> Result:
    """Run pullkeeper with a pseudo-terminal as standard input, typing `answer` into it."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [PULLKEEPER, *args],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        slave = -1
        os.write(master, answer)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return Result([PULLKEEPER, *args], proc.returncode, out, err)


# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_printed_fingerprint_is_openssls(registry: Registry, tmp_path: Path, host: str) -> None:
    env = isolated_env(tmp_path / "home")
    port = registry.host.rsplit(":", 1)[1]
    expected = openssl_fingerprint(registry.cert_dir / "ca.crt")

    result = pk_ok("registry", "trust", f"{host}:{port}", "-o", "json", env=env)
    report = result.json()
    assert [c["sha256"] for c in report["certificates"]] == [expected]
    leaf = report["certificates"][0]
    assert leaf["subject"] == leaf["issuer"] == "CN=127.0.0.1"
    assert leaf["self_signed"] is True
    assert leaf["validity"] == "valid"
    assert sorted(leaf["names"]) == ["DNS:localhost", "IP:127.0.0.1"]
    assert report["host_matches"] is True
    assert report["trust"] == 0
    assert report["warnings"] == []
    # -o json asks nothing and stores nothing without --yes.
    assert report["stored"] == []
    assert not certs_d(env).exists()

    text = pk("registry", "trust", f"{host}:{port}", "--yes", env=env)
    assert text.returncode == 0, text.describe()
    assert f"SHA-256      {expected}\n" in text.stdout
    assert "self-signed  yes" in text.stdout
    assert f"{host} matches the leaf certificate's names." in text.stdout


def test_trust_stores_a_file_skopeo_verifies_the_registry_with(
    registry: Registry, tmp_path: Path
) -> None:
    env = isolated_env(tmp_path / "home")
    authfile = authfile_for(registry, tmp_path / "auth.json")
    # The control: without the CA, skopeo refuses the registry's certificate.
    (tmp_path / "empty-certs").mkdir()
    refused = skopeo_inspect(registry, authfile, tmp_path / "empty-certs")
    assert refused.returncode != 0, refused.describe()
    assert "certificate" in refused.stderr, refused.describe()

    result = pk_ok("registry", "trust", registry.host, "--yes", env=env)
    stored = certs_d(env) / registry.host / "ca.crt"
    assert f"Trusted {registry.host}: wrote {stored}\n" in result.stdout
    assert der_of(stored.read_bytes()) == der_of((registry.cert_dir / "ca.crt").read_bytes())
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(stored.stat().st_mode) == 0o644
    assert [p.name for p in stored.parent.iterdir()] == ["ca.crt"]  # no temporary left

    accepted = skopeo_inspect(registry, authfile, stored.parent)
    assert accepted.returncode == 0, accepted.describe()
    assert accepted.json()["Digest"] == registry.digest

    # Trusting again finds the same certificate already there.
    again = pk_ok("registry", "trust", registry.host, "--yes", env=env)
    assert f"It is already trusted for {registry.host}." in again.stdout
    assert again.stderr == ""


def test_write_certs_d_also_writes_a_runtime_layout(registry: Registry, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    docker_certs_d = tmp_path / "etc" / "docker" / "certs.d"
    result = pk_ok(
        "registry", "trust", registry.host, "--yes", "--write-certs-d", str(docker_certs_d), env=env
    )
    own = certs_d(env) / registry.host / "ca.crt"
    runtime = docker_certs_d / registry.host / "ca.crt"
    assert result.stdout.endswith(
        f"Trusted {registry.host}: wrote {own}\nTrusted {registry.host}: wrote {runtime}\n"
    )
    assert runtime.read_bytes() == own.read_bytes()
    assert stat.S_IMODE(runtime.parent.stat().st_mode) == 0o755  # readable by daemons
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o644
    authfile = authfile_for(registry, tmp_path / "auth.json")
    accepted = skopeo_inspect(registry, authfile, runtime.parent)
    assert accepted.returncode == 0, accepted.describe()


def test_print_writes_only_pem(registry: Registry, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    result = pk_ok("registry", "trust", registry.host, "--print", env=env)
    assert result.stdout.startswith("-----BEGIN CERTIFICATE-----\n")
    assert result.stdout.endswith("-----END CERTIFICATE-----\n")
    assert der_of(result.out) == der_of((registry.cert_dir / "ca.crt").read_bytes())
    assert result.stderr == ""
    assert not certs_d(env).exists()

    clash = pk("registry", "trust", registry.host, "--print", "--yes", env=env)
    assert "--print only prints" in assert_one_line_error(clash)


def test_json_with_yes_stores(registry: Registry, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    report = pk_ok("registry", "trust", registry.host, "-o", "json", "--yes", env=env).json()
    stored = certs_d(env) / registry.host / "ca.crt"
    assert report["stored"] == [str(stored)]
    assert stored.read_text() == report["certificates"][0]["pem"]

    needs_yes = pk(
        "registry", "trust", registry.host, "-o", "json", "--write-certs-d", str(tmp_path), env=env
    )
    assert "--yes" in assert_one_line_error(needs_yes)


def test_refuses_to_guess_without_a_terminal(registry: Registry, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    result = pk("registry", "trust", registry.host, env=env)  # stdin is /dev/null
    line = assert_one_line_error(result)
    assert "not a terminal" in line and "--yes" in line, line
    # The details were shown, so the user can check the fingerprint before adding --yes.
    assert "SHA-256" in result.stdout
    assert not certs_d(env).exists()


def test_answering_no_stores_nothing_and_yes_stores(registry: Registry, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    declined = on_terminal(["registry", "trust", registry.host], b"n\n", env)
    assert declined.returncode == 1, declined.describe()
    assert f"Trust this certificate for {registry.host}? [y/N]" in declined.stderr
    assert "Not trusted; nothing was stored." in declined.stderr
    assert not certs_d(env).exists()

    accepted = on_terminal(["registry", "trust", registry.host], b"y\n", env)
    assert accepted.returncode == 0, accepted.describe()
    assert (certs_d(env) / registry.host / "ca.crt").is_file()


def test_replacing_a_different_certificate_warns(registry: Registry, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    stale = certs_d(env) / registry.host / "ca.crt"
    stale.parent.mkdir(parents=True)
    made = run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(tmp_path / "old.key"),
            "-out",
            str(stale),
            "-days",
            "1",
            "-subj",
            "/CN=old",
        ]
    )
    assert made.returncode == 0, made.describe()
    old = openssl_fingerprint(stale)
    result = pk_ok("registry", "trust", registry.host, "--yes", env=env)
    assert f"a different certificate is trusted for {registry.host} now (SHA-256 {old})" in (
        result.stderr
    )
    assert der_of(stale.read_bytes()) == der_of((registry.cert_dir / "ca.crt").read_bytes())


def test_unwritable_directory(registry: Registry, tmp_path: Path) -> None:
    # A path below a regular file cannot be created, even by root (tests may run as root).
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = isolated_env(tmp_path / "home", {"PULLKEEPER_CERTS_DIR": str(blocker / "certs.d")})
    line = assert_one_line_error(pk("registry", "trust", registry.host, "--yes", env=env))
    assert line.startswith(f"error: cannot write {blocker / 'certs.d' / registry.host}/ca.crt")
    assert "PULLKEEPER_CERTS_DIR" in line

    # All or nothing: a certs.d that cannot be written leaves pullkeeper's own store alone.
    env = isolated_env(tmp_path / "home2")
    result = pk(
        "registry", "trust", registry.host, "--yes", "--write-certs-d", str(blocker), env=env
    )
    line = assert_one_line_error(result)
    assert line == (
        f"error: cannot write {blocker / registry.host}/ca.crt: {blocker} is not a directory; "
        "run as root for a system certs.d, or choose a directory you can write"
    ), line
    assert not list(certs_d(env).rglob("ca.crt*"))
    assert not list(certs_d(env).rglob(".ca.crt*"))


# --------------------------------------------------------------------------- a CA's chain


@dataclass
class ChainServer:
    """A TLS server presenting leaf + root, recording the SNI names clients send."""

    port: int
    root: x509.Certificate
    server_names: list[str | None] = field(default_factory=list)


def _issue(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    sans: list[x509.GeneralName] | None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, signer = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def chain_server(tmp_path: Path) -> Iterator[ChainServer]:
    root_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    root = _issue("pullkeeper test root", root_key, None, None)
    leaf = _issue("localhost", leaf_key, (root.subject, root_key), [x509.DNSName("localhost")])
    (tmp_path / "chain.pem").write_bytes(
        leaf.public_bytes(Encoding.PEM) + root.public_bytes(Encoding.PEM)
    )
    (tmp_path / "key.pem").write_bytes(
        leaf_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    server = ChainServer(port=listener.getsockname()[1], root=root)
    context.sni_callback = lambda _sock, name, _ctx: server.server_names.append(name)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:  # ssl.SSLError included: a client that hung up
                conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def test_a_chain_stores_its_root_and_sni_follows_the_host(
    chain_server: ChainServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    env = isolated_env(tmp_path / "home", {"PULLKEEPER_CERTS_DIR": str(store)})
    address = f"localhost:{chain_server.port}"
    report = pk_ok("registry", "trust", address, "-o", "json", "--yes", env=env).json()
    assert chain_server.server_names == ["localhost"]
    leaf, root = report["certificates"]
    assert (leaf["self_signed"], root["self_signed"]) == (False, True)
    assert (leaf["ca"], root["ca"]) == (False, True)
    assert leaf["issuer"] == root["subject"] == "CN=pullkeeper test root"
    assert report["trust"] == 1
    assert report["warnings"] == []
    stored = store / address / "ca.crt"
    assert report["stored"] == [str(stored)]
    assert der_of(stored.read_bytes()) == [chain_server.root.public_bytes(Encoding.DER)]

    text = pk("registry", "trust", address, "--yes", env=env)
    assert "[0] leaf\n" in text.stdout and "[1] root\n" in text.stdout, text.describe()
    assert "Certificate to trust: [1], the root of the chain." in text.stdout

    # No SNI for an IP address; and 127.0.0.1 is not among the leaf's names.
    chain_server.server_names.clear()
    mismatch = pk("registry", "trust", f"127.0.0.1:{chain_server.port}", "--print", env=env)
    assert mismatch.returncode == 0, mismatch.describe()
    assert all(name is None for name in chain_server.server_names), chain_server.server_names
    assert mismatch.stderr == (
        "warning: 127.0.0.1 does not match the leaf certificate, which is for DNS:localhost; "
        "clients will refuse the connection even once it is trusted: reissue it with "
        "IP:127.0.0.1, or connect by one of its names\n"
    )
    assert len(der_of(mismatch.out)) == 2


# --------------------------------------------------------------------------- failures


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused(tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    port = _closed_port()
    line = assert_one_line_error(pk("registry", "trust", f"127.0.0.1:{port}", env=env))
    assert f"127.0.0.1:{port} refused the connection" in line, line
    assert "check the port" in line


def test_unresolvable_host(tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    # .invalid never resolves (RFC 6761).
    result = pk("registry", "trust", "registry.pullkeeper.invalid:5000", env=env)
    line = assert_one_line_error(result)
    assert line.startswith("error: cannot resolve registry.pullkeeper.invalid: "), line


def test_silent_server_times_out(tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)  # the kernel accepts connections; nobody ever answers
        port = listener.getsockname()[1]
        result = pk("registry", "trust", f"127.0.0.1:{port}", "--timeout", "0.5", env=env)
    line = assert_one_line_error(result)
    assert "sent no TLS handshake within 0.5 s" in line, line


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_http_port(tmp_path: Path) -> Iterator[int]:
    """A plain-HTTP server on 127.0.0.1, stopped at teardown."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_plain_http_registry_is_recognised(plain_http_port: int, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    address = f"127.0.0.1:{plain_http_port}"
    # A bounded timeout: an HTTP server may wait for the end of a line that a
    # ClientHello never sends; pullkeeper then asks it in plain HTTP.
    line = assert_one_line_error(pk("registry", "trust", address, "--timeout", "3", env=env))
    assert f"{address} looks like a plain-HTTP registry" in line, line
    assert "insecure" in line


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("", "the host is empty"),
        ("https://registry.example.com", "without a scheme or path"),
        ("registry.example.com/team", "without a scheme or path"),
        ("::1", "in brackets"),
        ("[not-v6]:5000", "is not an IPv6 address"),
        ("registry.example.com:0", "not a number from 1 to 65535"),
        ("registry.example.com:65536", "not a number from 1 to 65535"),
        ("registry.example.com:http", "not a number from 1 to 65535"),
        ("bad_host:5000", "is not a host name or an IP address"),
        ("trailing-.example.com", "is not a host name or an IP address"),
    ],
)
def test_invalid_address(address: str, why: str, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home")
    line = assert_one_line_error(pk("registry", "trust", address, env=env))
    assert line.startswith(f"error: {address!r} is not a valid HOST[:PORT]: "), line
    assert why in line, line
