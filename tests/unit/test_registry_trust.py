"""How `registry trust` reads addresses and describes certificates, on certificates made
here with `cryptography` (no network)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pullkeeper.core.certificates import assess, describe, host_matches
from pullkeeper.registry.trust import Target, TrustError, parse_target

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
CA_KEY = ec.generate_private_key(ec.SECP256R1())


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    cn: str,
    sans: list[x509.GeneralName] | None = None,
    *,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=1),
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
    key: ec.EllipticCurvePrivateKey = KEY,
    ca: bool = False,
) -> x509.Certificate:
    issuer_name, signing_key = issuer or (name(cn), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def dns(value: str) -> x509.DNSName:
    return x509.DNSName(value)


def ip(value: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(value))


def test_describe_a_self_signed_leaf() -> None:
    cert = make_cert("registry.example.com", [dns("registry.example.com"), ip("10.0.0.5")])
    info = describe(cert, NOW)
    assert info.subject == info.issuer == "CN=registry.example.com"
    assert info.sha256 == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert len(info.sha256) == 32 * 3 - 1
    assert info.not_before == NOW - timedelta(days=1)
    assert info.not_after == NOW + timedelta(days=1)
    assert info.validity == "valid"
    assert info.names == ("DNS:registry.example.com", "IP:10.0.0.5")
    assert info.self_signed is True
    assert info.ca is False

    report = assess([cert], "registry.example.com", NOW)
    assert report.host_matches is True
    assert report.anchor == 0
    assert report.warnings == ()


def test_expired_and_not_yet_valid() -> None:
    expired = make_cert(
        "old", [dns("old")], not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(1)
    )
    assert describe(expired, NOW).validity == "expired"
    (warning,) = assess([expired], "old", NOW).warnings
    assert warning == (
        "certificate [0] (CN=old) expired on 2026-05-31 12:00:00 UTC; "
        "clients will refuse it: renew it on the registry"
    )

    future = make_cert("new", [dns("new")], not_before=NOW + timedelta(hours=1))
    assert describe(future, NOW).validity == "not yet valid"
    (warning,) = assess([future], "new", NOW).warnings
    assert "is not valid before 2026-06-01 13:00:00 UTC" in warning


def test_san_mismatch() -> None:
    cert = make_cert("registry.example.com", [dns("registry.example.com"), ip("10.0.0.5")])
    report = assess([cert], "10.0.0.6", NOW)
    assert report.host_matches is False
    assert report.warnings == (
        "10.0.0.6 does not match the leaf certificate, which is for "
        "DNS:registry.example.com, IP:10.0.0.5; clients will refuse the connection even once "
        "it is trusted: reissue it with IP:10.0.0.6, or connect by one of its names",
    )
    report = assess([cert], "mirror.example.com", NOW)
    assert report.host_matches is False
    assert "reissue it with DNS:mirror.example.com" in report.warnings[0]


def test_common_name_alone_does_not_count() -> None:
    # Go clients ignore the CN: a certificate without SANs fits no host.
    cert = make_cert("registry.example.com")
    assert describe(cert, NOW).names == ()
    report = assess([cert], "registry.example.com", NOW)
    assert report.host_matches is False
    assert "has no subject alternative names" in report.warnings[0]


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("registry.example.com", "registry.example.com", True),
        ("Registry.Example.COM", "registry.example.com", True),
        ("registry.example.com", "registry.example.com.", True),
        ("registry.example.com", "example.com", False),
        ("*.example.com", "registry.example.com", True),
        ("*.example.com", "a.b.example.com", False),  # one whole label only
        ("*.example.com", "example.com", False),
        ("r*.example.com", "registry.example.com", False),
        ("*.example.com", "10.0.0.5", False),
    ],
)
def test_dns_matching(pattern: str, host: str, matches: bool) -> None:
    assert host_matches(make_cert("x", [dns(pattern)]), host) is matches


@pytest.mark.parametrize(
    ("san", "host", "matches"),
    [
        ("10.0.0.5", "10.0.0.5", True),
        ("10.0.0.5", "10.0.0.50", False),
        ("::1", "::1", True),
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("127.0.0.1", "localhost", False),
    ],
)
def test_ip_matching(san: str, host: str, matches: bool) -> None:
    # An IP is matched against IP SANs only, never against DNS names written like one.
    cert = make_cert("x", [ip(san), dns("10.0.0.50")])
    assert host_matches(cert, host) is matches


def test_a_chain_trusts_its_root() -> None:
    root = make_cert("Example Root", key=CA_KEY, ca=True)
    leaf = make_cert(
        "registry.example.com", [dns("registry.example.com")], issuer=(root.subject, CA_KEY)
    )
    report = assess([leaf, root], "registry.example.com", NOW)
    assert [c.self_signed for c in report.certificates] == [False, True]
    assert [c.ca for c in report.certificates] == [False, True]
    assert report.certificates[0].issuer == "CN=Example Root"
    assert report.anchor == 1
    assert report.warnings == ()

    swapped = assess([root, leaf], "registry.example.com", NOW)
    assert any("was not issued by certificate [1]" in w for w in swapped.warnings)


def test_same_names_but_another_key_is_not_self_signed() -> None:
    # Subject equal to issuer is not enough: the signature must verify with its own key.
    impostor = make_cert("Example Root", issuer=(name("Example Root"), CA_KEY))
    assert describe(impostor, NOW).self_signed is False


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("registry.example.com", Target("registry.example.com", 443, "registry.example.com")),
        (
            "registry.example.com:5000",
            Target("registry.example.com", 5000, "registry.example.com:5000"),
        ),
        ("localhost:443", Target("localhost", 443, "localhost:443")),
        ("127.0.0.1:5000", Target("127.0.0.1", 5000, "127.0.0.1:5000")),
        ("[::1]:5000", Target("::1", 5000, "[::1]:5000")),
        ("[fe80::1]", Target("fe80::1", 443, "[fe80::1]")),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target


def test_target_address() -> None:
    assert parse_target("[::1]").address == "[::1]:443"
    assert parse_target("[::1]").is_ip
    assert parse_target("registry.example.com").address == "registry.example.com:443"
    assert not parse_target("registry.example.com").is_ip


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the host is empty"),
        (":5000", "the host is empty"),
        ("registry.example.com:", "the port '' is not a number from 1 to 65535"),
        ("registry.example.com:99999", "the port '99999' is not a number from 1 to 65535"),
        ("registry.example.com:٣", "the port '٣' is not a number from 1 to 65535"),
        ("https://registry.example.com", "write only the host and port"),
        ("fe80::1", "an IPv6 address must be written in brackets"),
        ("[registry]:5000", "'registry' in brackets is not an IPv6 address"),
        ("[::1]x", "expected HOST or HOST:PORT"),
        ("a_b.example.com", "'a_b.example.com' is not a host name or an IP address"),
        ("x" * 64 + ".example.com", "a DNS name has at most 253 characters, in labels of"),
        ("x." * 127 + "x", "a DNS name has at most 253 characters, in labels of"),
    ],
)
def test_parse_target_errors(text: str, reason: str) -> None:
    with pytest.raises(TrustError) as caught:
        parse_target(text)
    message = str(caught.value)
    assert message.startswith(f"{text!r} is not a valid HOST[:PORT]: {reason}")
    assert message.endswith("e.g. registry.example.com:5000")
