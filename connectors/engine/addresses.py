"""The address policy of outbound HTTP: which IP addresses a connector request may connect to.

Only globally routable addresses pass, plus the operator's allowlist (``CONNECTORS_ALLOWED_PRIVATE_HOSTS``,
parsed by :mod:`connectors.engine.allowlist`). IPv6 forms that embed an IPv4 address are judged by it. The
check itself runs at connect time, on every resolved address (:mod:`connectors.engine.transport`). A refused
loopback or private address names the setting in its error, so a developer knows what to do. Pure Python.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from connectors.engine import allowlist
from connectors.engine.http_errors import BlockedDestination

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA_V4 = ipaddress.ip_address("169.254.169.254")
_METADATA = frozenset({_METADATA_V4, ipaddress.ip_address("fd00:ec2::254")})
# Refusals whose step error names the allowlist setting: a developer's own server, not an attack target.
_HINTED = frozenset({"a loopback address", "a private address"})
_V4_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ULA = ipaddress.ip_network("fc00::/7")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")

# Ranges refused although some Python versions classify them as global; checked after the named categories.
_EXTRA_REFUSED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "a 'this network' address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fec0::/10", "a site-local address"),
        ("100::/64", "a discard-only address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
    )
)


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and may be translated or tunnelled to."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [server, client]
    if ip in _NAT64_WELL_KNOWN or ip in _NAT64_LOCAL_USE or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _category(ip: IPAddress) -> str | None:
    """Why ``ip`` itself (not what it embeds) is refused, or None when it is globally routable."""
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip == _METADATA_V4:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _CGNAT:
        return "a shared (CGNAT) address"
    if any(ip in net for net in _V4_PRIVATE) or ip in _ULA:
        return "a private address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "a broadcast address"
    for net, reason in _EXTRA_REFUSED:
        if ip.version == net.version and ip in net:
            return reason
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_private or not ip.is_global:
        return "not a globally routable address"
    return None


def _refusal(ip: IPAddress) -> str | None:
    """Why the policy refuses ``ip`` (ignoring any allowlist), or None when it may be contacted.

    The result completes a sentence about the address: "is a private address", "embeds 10.0.0.1, a private
    address". IPv6 forms that carry an IPv4 address are judged by that IPv4 address too: IPv4-mapped,
    IPv4-compatible and well-known NAT64 forms are only spellings of their IPv4 address, so they are judged
    by it alone; 6to4 and Teredo addresses must pass both as themselves and by every IPv4 address they embed.
    """
    ip = _without_scope(ip)
    if ip.version == 6 and ip in _V4_COMPATIBLE and int(ip) <= 1:
        reason = _category(ip)  # :: and ::1 are themselves, not IPv4-compatible 0.0.0.0 and 0.0.0.1
        return None if reason is None else f"is {reason}"
    embedded = _embedded_ipv4(ip)
    for v4 in embedded:
        reason = _category(v4)
        if reason is not None:
            return f"embeds {v4}, {reason}"
    if embedded and (ip in _V4_COMPATIBLE or ip in _NAT64_WELL_KNOWN or ip.ipv4_mapped is not None):  # type: ignore[union-attr]
        return None
    reason = _category(ip)
    return None if reason is None else f"is {reason}"


class AddressPolicy:
    """Decides which addresses outbound requests may connect to.

    Only globally routable addresses pass, except for the operator's allowlist
    (``CONNECTORS_ALLOWED_PRIVATE_HOSTS``, see :mod:`connectors.engine.allowlist`): host names (exact,
    case-insensitive), IP addresses and networks, each on any port or only on the port it names.
    """

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        allowed_networks: Iterable[IPNetwork] = (),
        entries: Iterable[allowlist.Entry] = (),
    ) -> None:
        self.entries = (
            *(allowlist.Entry(host=_normalize_host_name(h)) for h in allowed_hosts),
            *(allowlist.Entry(network=n) for n in allowed_networks),
            *entries,
        )

    @classmethod
    def from_setting(cls, value: str | Iterable[str] | None) -> AddressPolicy:
        """Parse ``CONNECTORS_ALLOWED_PRIVATE_HOSTS``: comma-separated host names, IPs or CIDRs, each optionally
        with ``:PORT``. Raises ValueError naming the entry when an entry is none of these."""
        return cls(entries=allowlist.parse_entries(value))

    def is_exempt(self, host: str, ip: IPAddress, port: int | None = None) -> bool:
        return allowlist.allows(self.entries, host, _candidates(ip), port)

    def check(self, host: str, ip: IPAddress, port: int | None = None) -> None:
        """Raise BlockedDestination unless ``ip`` (which ``host`` resolved to) may be contacted on ``port``."""
        if self.is_exempt(host, ip, port):
            return
        refusal = _refusal(ip)
        if refusal is None:
            return
        literal = parse_ip(host.strip("[]"))
        if literal is not None and _without_scope(literal) == _without_scope(ip):
            message = f"refused: {ip} {refusal}"
        else:
            message = f"refused: {host} resolves to {ip}, which {refusal}"
        raise BlockedDestination(message + self._hint(host, ip, port))

    def _hint(self, host: str, ip: IPAddress, port: int | None) -> str:
        """What the operator can do about a refused loopback or private address (never a metadata one)."""
        candidates = _candidates(ip)
        if any(c in _METADATA for c in candidates) or not any(_category(c) in _HINTED for c in candidates):
            return ""
        ports = allowlist.allowed_ports(self.entries, host, candidates)
        if ports:
            listed = ", ".join(str(p) for p in ports)
            return f" ({allowlist.SETTING} allows it only on port {listed})"
        name = host.strip("[]")
        if parse_ip(name) is not None or _is_ipv4_spelling(name):
            address = _without_scope(ip)  # the address itself, not an odd spelling of it
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            name = str(mapped or address)
        shown = f"[{name}]" if ":" in name else name
        target = f"{shown}:{port}" if port else shown
        return f"; if it is your own server, add {target} to {allowlist.SETTING}"


def _is_ipv4_spelling(host: str) -> bool:
    """Whether the resolver reads ``host`` as an IPv4 address (``2130706433``, ``0x7f.1``, ``0177.0.0.1``)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _candidates(ip: IPAddress) -> list[IPAddress]:
    candidates: list[IPAddress] = [_without_scope(ip)]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return candidates


def _normalize_host_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _without_scope(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
    return ip


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
