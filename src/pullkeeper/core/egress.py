"""Where the server may connect on a user's behalf: rules over host names and networks.

The server talks to registries and token servers that users name, so it must not become a
way into what only it can reach. Rules are judged against the address actually connected
to (after name resolution), and against the name asked for:

- Entries of `egress_allow` and `egress_deny` are host names (`registry.local`), wildcards
  (`*.example.com`), addresses or networks (`10.0.0.0/8`, `::1`), each optionally with a
  port (`127.0.0.1:5000`, `[::1]:5000`, `registry.local:5000`). When several match, the
  most specific wins: a name over a wildcard over a network, a longer wildcard or prefix
  over a shorter one, one with a port over one without; a tie is a refusal.
- When no entry matches, loopback, link-local (cloud metadata among it), unspecified and
  multicast addresses are refused; every other address (private ranges included, where
  self-hosted registries live) is allowed.
- Only an address or network entry lifts those default refusals: whoever answers for a
  name could point it at loopback or a metadata service.
- The server's own listeners are refused unless an allow entry names their address with
  their port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "egress_allow"
DENY_SETTING = "egress_deny"

# Refused unless an entry allows them; each with the words of a refusal.
_BUILT_IN: tuple[tuple[str, str], ...] = (
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    ("0.0.0.0/8", "an unspecified address"),
    ("::/128", "an unspecified address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata services live there)"),
    ("fe80::/10", "a link-local address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
)
DEFAULT_REFUSED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why) for net, why in _BUILT_IN
)


class EgressError(ValueError):
    """An entry of an egress setting that is neither a host name nor a network."""


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    allow: bool
    network: Network | None = None
    name: str | None = None  # a host name, or a wildcard's suffix with its dot (".example.com")
    port: int | None = None

    def specificity(self, host: str, address: Address, port: int) -> int | None:
        """How closely this rule names the destination; None when it does not match."""
        if self.port is not None and self.port != port:
            return None
        level: int | None = None
        if self.network is not None:
            if address.version == self.network.version and address in self.network:
                level = self.network.prefixlen
        elif self.name is not None and self.name.startswith("."):
            level = 1000 + len(self.name) if host.endswith(self.name) else None
        elif host == self.name:
            level = 2000
        return None if level is None else level * 2 + (self.port is not None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a destination is refused, and the setting that decides it."""

    setting: str
    reason: str

    def sentence(self, host: str, port: int) -> str:
        # Not the address a name resolved to: members see the sentence.
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if self.setting == DENY_SETTING:
            return (
                f"the server does not connect to {where}: {self.reason}; an admin can change "
                f"the {DENY_SETTING} setting"
            )
        return (
            f"the server does not connect to {where}: it is {self.reason}; an admin who means "
            f"it can list its address in the {ALLOW_SETTING} setting"
        )


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = entry[1:].partition("]")
        return inside, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, colon, port = entry.rpartition(":")
    if colon and host.count(":") == 0 and port.isdigit():
        return host, int(port)
    return entry, None


def _rule(text: str, allow: bool, setting: str) -> Rule:
    entry, port = _split_port(text.strip().lower())
    entry = entry.rstrip(".")
    if port is not None and not 0 < port < 65536:
        raise EgressError(f"{setting}: {text!r} names port {port}, which is not 1-65535")
    try:
        return Rule(text, allow, network=ipaddress.ip_network(entry, strict=False), port=port)
    except ValueError:
        pass
    name = entry.removeprefix("*")
    labels = name.removeprefix(".").split(".")
    valid = all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() and label[0] != "-"
        for label in labels
    )
    if not valid or (name.startswith(".") != entry.startswith("*")) or "/" in entry:
        raise EgressError(
            f"{setting}: {text!r} is neither a host name (registry.example.com), a wildcard "
            "(*.example.com) nor an address or network (10.0.0.0/8, ::1), each with an "
            "optional :port"
        )
    return Rule(text, allow, name=name, port=port)


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    rules: tuple[Rule, ...] = ()
    own_ports: frozenset[int] = frozenset()  # the server's listeners, on this machine's addresses

    @classmethod
    def parse(
        cls, allow: Iterable[str] = (), deny: Iterable[str] = (), own_ports: Iterable[int] = ()
    ) -> EgressPolicy:
        rules = [_rule(t, True, ALLOW_SETTING) for t in allow]
        rules += [_rule(t, False, DENY_SETTING) for t in deny]
        return cls(tuple(rules), frozenset(p for p in own_ports if p))

    def judge(self, host: str, address: str, port: int, *, local: bool) -> Refusal | None:
        """None when the server may connect to `address` (resolved from `host`) on `port`;
        `local` says whether the address is one of this machine's."""
        ip = _address(address)
        name = host.strip("[]").lower().rstrip(".")
        if (
            local
            and port in self.own_ports
            and not any(
                r.allow and r.network and r.port == port and r.specificity(name, ip, port)
                for r in self.rules
            )
        ):
            return Refusal(ALLOW_SETTING, "this server's own listener")
        best: tuple[int, bool, Rule] | None = None
        for rule in self.rules:
            level = rule.specificity(name, ip, port)
            # A refusal wins a tie: (level, not allow) sorts deny after allow.
            if level is not None and (best is None or (level, not rule.allow) > best[:2]):
                best = (level, not rule.allow, rule)
        if best is not None and not best[2].allow:
            return Refusal(DENY_SETTING, f"{DENY_SETTING} lists {best[2].text}")
        # Only an address or network lifts a default refusal: whoever answers for a name
        # could point it at loopback or the metadata service.
        if best is not None and best[2].network is not None:
            return None
        for network, why in DEFAULT_REFUSED:
            if ip.version == network.version and ip in network:
                return Refusal(ALLOW_SETTING, why)
        return None
