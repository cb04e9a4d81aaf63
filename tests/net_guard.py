"""pytest plugin: no test may open a connection outside loopback.

Registered with ``pytest_plugins = ["tests.net_guard"]`` (or ``-p tests.net_guard``). The autouse
``net_guard`` fixture wraps ``socket.socket.connect``, ``socket.socket.connect_ex`` and
``socket.create_connection``: a connection to anything but 127.0.0.0/8 or ::1 (or an AF_UNIX path) raises
``NetGuardViolation`` and fails the test, even when the code under test swallows the exception.

It also provides ``fake_dns``, which answers ``socket.getaddrinfo`` for chosen test host names, so tests can
make a name resolve to any address without a real DNS query.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.ip_address("::1")


class NetGuardViolation(AssertionError):
    """A test tried to connect outside loopback."""


def is_loopback_address(host: str) -> bool:
    """Whether ``host`` is an IP literal in 127.0.0.0/8 or ::1 (IPv4-mapped loopback included)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped in _LOOPBACK_V4
        return ip == _LOOPBACK_V6
    return ip in _LOOPBACK_V4


@dataclass
class NetGuard:
    violations: list[str] = field(default_factory=list)

    def check(self, address: Any, via: str) -> None:
        if isinstance(address, str | bytes):  # AF_UNIX path
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if isinstance(host, str) and (is_loopback_address(host) or host == "localhost"):
            return
        message = f"net_guard: {via} to {address!r} is outside loopback"
        self.violations.append(message)
        raise NetGuardViolation(message)


@pytest.fixture(autouse=True)
def net_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    guard = NetGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family != socket.AF_UNIX:
            guard.check(address, "socket.connect")
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if sock.family != socket.AF_UNIX:
            guard.check(address, "socket.connect_ex")
        return real_connect_ex(sock, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        guard.check(address, "socket.create_connection")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield guard
    if guard.violations:
        pytest.fail("\n".join(guard.violations), pytrace=False)


@dataclass
class FakeDns:
    """Answers getaddrinfo for the names given to ``add``; other names go to the real resolver.

    Each call of ``add`` for the same name queues one answer; the last answer repeats once the queue is
    down to it, so ``add(name, public)`` then ``add(name, private)`` models a rebinding resolver.
    """

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def add(self, name: str, *ips: str) -> None:
        self.answers.setdefault(name.lower(), []).append(list(ips))

    def answer(self, name: str, port: Any) -> list[tuple[Any, ...]] | None:
        queue = self.answers.get(name.lower().rstrip("."))
        if queue is None:
            return None
        self.lookups.append(name)
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        port_number = int(port or 0)
        results = []
        for ip in ips:
            if ipaddress.ip_address(ip).version == 6:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port_number, 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port_number)))
        return results


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns()
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        answer = dns.answer(host, port) if isinstance(host, str) else None
        if answer is not None:
            return answer
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns
