"""`CONNECTORS_ALLOWED_PRIVATE_HOSTS`: the operator's exceptions to the address policy, optionally per port.

An entry is a host name, an IP address or a network (CIDR), optionally followed by `:PORT` (IPv6 addresses
and networks in brackets then: `[::1]:8080`, `[fd00::/8]:443`). An entry with a port allows only that port.

Pure Python (no Django): `connectors.engine.http.AddressPolicy` uses it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "CONNECTORS_ALLOWED_PRIVATE_HOSTS"
_HOST_NAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
_BRACKETED_RE = re.compile(r"^\[(?P<address>[^\]]+)\](?::(?P<port>[^:]*))?$")


@dataclass(frozen=True)
class Entry:
    """One allowed host name or network, on one port or (``port`` None) on any."""

    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def covers(self, host: str, candidates: Iterable[IPAddress]) -> bool:
        """Whether this entry names ``host`` or holds one of the ``candidates``, whatever the port."""
        if self.host is not None:
            return bool(host) and normalize_host_name(host) == self.host
        network = self.network
        assert network is not None
        return any(ip.version == network.version and ip in network for ip in candidates)


def normalize_host_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def parse_entries(value: str | Iterable[str] | None) -> list[Entry]:
    """The entries of the setting (comma-separated, or a list of such strings); ValueError names a bad one."""
    if value is None:
        raw_entries: list[str] = []
    elif isinstance(value, str):
        raw_entries = value.split(",")
    else:
        raw_entries = [part for item in value for part in str(item).split(",")]
    return [parse_entry(raw.strip()) for raw in raw_entries if raw.strip()]


def parse_entry(entry: str) -> Entry:
    address, port = _split_port(entry)
    try:
        return Entry(network=ipaddress.ip_network(address, strict=False), port=port)
    except ValueError:
        if "/" in address or ":" in address:
            raise ValueError(f"{SETTING}: {entry!r} is not a valid IP address or network") from None
    name = normalize_host_name(address)
    if not _HOST_NAME_RE.match(name):
        raise ValueError(f"{SETTING}: {entry!r} is not a valid host name")
    return Entry(host=name, port=port)


def _split_port(entry: str) -> tuple[str, int | None]:
    """(address, port) of an entry; bare IPv6 (two colons or more) has no port, bracketed IPv6 may."""
    bracketed = _BRACKETED_RE.match(entry)
    if bracketed:
        port = bracketed.group("port")
        return bracketed.group("address"), None if port is None else _port(port, entry)
    if entry.count(":") == 1:
        address, port = entry.split(":")
        return address, _port(port, entry)
    return entry, None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{SETTING}: {entry!r} has an invalid port (1 to 65535)")
    return int(text)


def allows(entries: Iterable[Entry], host: str, candidates: list[IPAddress], port: int | None) -> bool:
    return any(e.covers(host, candidates) and (e.port is None or e.port == port) for e in entries)


def allowed_ports(entries: Iterable[Entry], host: str, candidates: list[IPAddress]) -> list[int]:
    """Ports the entries allow for this host or address (when they name it only with ports)."""
    return sorted({e.port for e in entries if e.port is not None and e.covers(host, candidates)})
