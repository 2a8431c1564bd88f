"""The egress rules and the token-realm rules, exactly; and that the guard connects only to
an address it judged."""

from __future__ import annotations

import pytest

from pullkeeper.core import realms
from pullkeeper.core.egress import ALLOW_SETTING, DENY_SETTING, EgressError, EgressPolicy
from pullkeeper.registry.egress import EgressRefused, allowed_addresses


def _verdict(policy: EgressPolicy, host: str, address: str, port: int = 443, local: bool = False):
    refusal = policy.judge(host, address, port, local=local)
    return None if refusal is None else refusal.setting


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.255.1.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback is loopback
        ("0.0.0.0", True),  # noqa: S104 - an address judged, not bound
        ("::", True),
        ("169.254.169.254", True),
        ("fe80::1%lo", True),
        ("fd00:ec2::254", True),
        ("224.0.0.1", True),
        ("10.1.2.3", False),  # private ranges hold self-hosted registries
        ("192.168.0.10", False),
        ("172.16.5.4", False),
        ("fd12::1", False),
        ("8.8.8.8", False),
    ],
)
def test_the_defaults(address: str, refused: bool) -> None:
    assert _verdict(EgressPolicy(), "registry", address) == (ALLOW_SETTING if refused else None)


def test_the_most_specific_entry_wins_and_a_tie_refuses() -> None:
    policy = EgressPolicy.parse(
        allow=["10.1.0.0/16", "127.0.0.1", "*.corp.example", "ok.bad.example"],
        deny=["10.0.0.0/8", "10.1.2.0/24", "*.bad.example", "127.0.0.1"],
    )
    assert _verdict(policy, "r", "10.9.9.9") == DENY_SETTING
    assert _verdict(policy, "r", "10.1.9.9") is None  # /16 allow over /8 deny
    assert _verdict(policy, "r", "10.1.2.9") == DENY_SETTING  # /24 deny over /16 allow
    assert _verdict(policy, "r", "127.0.0.1") == DENY_SETTING  # same entry both ways: refused
    assert _verdict(policy, "x.corp.example", "10.9.9.9") is None  # a name over a network
    # A name never lifts a default refusal: its DNS could point anywhere.
    assert _verdict(policy, "x.corp.example", "127.0.0.5") == ALLOW_SETTING
    assert _verdict(policy, "x.corp.example", "169.254.169.254") == ALLOW_SETTING
    assert _verdict(policy, "x.bad.example", "8.8.8.8") == DENY_SETTING
    assert _verdict(policy, "ok.bad.example", "8.8.8.8") is None  # a name over a wildcard


def test_ports_and_own_listeners() -> None:
    policy = EgressPolicy.parse(
        allow=["127.0.0.1", "[::1]:8080", "localhost:8080"], own_ports=[8080, 0]
    )
    assert _verdict(policy, "r", "127.0.0.1", 5000, local=True) is None
    # Loopback allowed, yet the server's own port stays refused without an entry naming it.
    refusal = policy.judge("r", "127.0.0.1", 8080, local=True)
    assert refusal is not None and refusal.reason == "this server's own listener"
    # Nor does a name with the port: only the address names the listener.
    assert _verdict(policy, "localhost", "127.0.0.1", 8080, local=True) == ALLOW_SETTING
    assert _verdict(policy, "r", "::1", 8080, local=True) is None
    assert _verdict(policy, "r", "::1", 8081, local=True) == ALLOW_SETTING
    # The same port on another machine is not this server.
    assert _verdict(policy, "r", "10.0.0.5", 8080, local=False) is None
    assert policy.own_ports == frozenset({8080})


@pytest.mark.parametrize(
    "entry", ["http://10.0.0.1", "10.0.0.0/33", "*", "a b", "-x.example", "host:0", "x/y"]
)
def test_entries_that_are_not_hosts_or_networks_are_refused(entry: str) -> None:
    with pytest.raises(EgressError, match="egress_deny"):
        EgressPolicy.parse(deny=[entry])


def test_the_guard_connects_only_to_the_allowed_addresses_of_a_name() -> None:
    # localhost resolves to loopback: judged after resolution, not by its name.
    with pytest.raises(EgressRefused, match="loopback"):
        allowed_addresses(EgressPolicy(), "localhost", 5000)
    assert allowed_addresses(EgressPolicy.parse(allow=["127.0.0.1"]), "localhost", 5000) == [
        "127.0.0.1"
    ]
    with pytest.raises(EgressRefused, match="list its address"):
        allowed_addresses(EgressPolicy.parse(allow=["localhost"]), "localhost", 5000)


@pytest.mark.parametrize(
    ("registry", "scheme", "realm", "trusted", "ok"),
    [
        ("registry-1.docker.io", "https", "https://auth.docker.io/token", (), True),
        ("registry.gitlab.com", "https", "https://gitlab.com/jwt/auth", (), True),
        ("quay.io", "https", "https://quay.io/v2/auth", (), True),
        ("harbor.example.com", "https", "https://harbor.example.com:8443/service/token", (), True),
        ("harbor.example.com", "https", "https://auth.example.com/token", (), False),
        ("harbor.example.com", "https", "https://auth.example.com/t", ("auth.example.com",), True),
        ("harbor.example.com", "https", "https://a.auth.example.com/t", ("*.example.com",), True),
        ("harbor.example.com", "https", "https://evil.test/t", ("*.example.com",), False),
        ("harbor.example.com", "https", "http://harbor.example.com/token", (), False),
        ("harbor.example.com:5000", "http", "http://harbor.example.com/token", (), True),
        ("harbor.example.com:5000", "http", "http://other.example.com/token", (), False),
        ("registry.example.com", "https", "https://registry.example.com@evil.test/t", (), False),
        ("registry.example.com", "https", "ftp://registry.example.com/t", (), False),
        ("[::1]:5000", "https", "https://[::1]:5001/token", (), True),
    ],
)
def test_where_a_login_may_go(
    registry: str, scheme: str, realm: str, trusted: tuple[str, ...], ok: bool
) -> None:
    assert (realms.judge(registry, scheme, realm, trusted) is None) is ok


@pytest.mark.parametrize("value", ["https://auth.example.com", "auth.example.com/token", "a b"])
def test_token_hosts_are_hosts(value: str) -> None:
    with pytest.raises(realms.RealmError, match="not a token host"):
        realms.check_token_host(value)
