"""SSRF defences of connectors.engine.http: which addresses may be contacted, and that refusals send nothing.

No test here connects outside loopback: names resolve through ``fake_dns``, the ``net_guard`` plugin fails
any connection attempt to another address, and the one test that needs a "public" server redirects the
socket connect to a local server while recording the address the client asked for.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests

from connectors.engine.allowlist import Entry
from connectors.engine.http import (
    AddressPolicy,
    BlockedDestination,
    ConnectionFailed,
    OutboundRequest,
    SafeHttpClient,
)
from connectors.engine.http_errors import translate
from tests.local_server import TEST_CA_BUNDLE, LocalServer, Reply
from tests.net_guard import FakeDns, NetGuard, NetGuardViolation

pytest_plugins = ["tests.local_server"]

NO_ALLOWLIST = AddressPolicy.from_setting("")


def refusal_of(error: BaseException) -> str:
    """The refusal without the hint naming the allowlist (tested on its own below)."""
    return str(error).split("; if it is your own server")[0]


def get(client: SafeHttpClient, url: str) -> Any:
    return client.send(OutboundRequest(method="GET", url=url, timeout=3))


def url_for(address: str, port: int = 80, scheme: str = "http") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}/path?token=secret"


# Addresses that are never contacted without an allowlist entry, with how the refusal describes them.
# Loopback addresses are tested separately against a live local server (LOOPBACK_SPELLINGS).
REFUSED_ADDRESSES = [
    # RFC 1918 private networks
    ("10.0.0.1", "is a private address"),
    ("10.255.255.254", "is a private address"),
    ("172.16.0.1", "is a private address"),
    ("172.31.255.254", "is a private address"),
    ("192.168.0.1", "is a private address"),
    ("192.168.255.254", "is a private address"),
    # Carrier-grade NAT
    ("100.64.0.1", "is a shared (CGNAT) address"),
    ("100.127.255.254", "is a shared (CGNAT) address"),
    # Link-local and cloud metadata
    ("169.254.169.254", "is a cloud metadata address"),
    ("169.254.0.1", "is a link-local address"),
    ("169.254.255.254", "is a link-local address"),
    # This network, multicast, reserved, broadcast
    ("0.0.0.0", "is an unspecified address"),
    ("0.1.2.3", "is a 'this network' address"),
    ("224.0.0.1", "is a multicast address"),
    ("239.255.255.250", "is a multicast address"),
    ("240.0.0.1", "is a reserved address"),
    ("254.255.255.254", "is a reserved address"),
    ("255.255.255.255", "is a broadcast address"),
    # Special-purpose IPv4
    ("192.0.0.8", "is an IETF protocol assignment address"),
    ("192.0.2.1", "is a documentation address"),
    ("198.51.100.1", "is a documentation address"),
    ("203.0.113.1", "is a documentation address"),
    ("198.18.0.1", "is a benchmarking address"),
    ("198.19.255.254", "is a benchmarking address"),
    ("192.88.99.1", "is a deprecated 6to4 relay address"),
    # IPv6
    ("::", "is an unspecified address"),
    ("fc00::1", "is a private address"),
    ("fd12:3456:789a::1", "is a private address"),
    ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "is a private address"),
    ("fe80::1", "is a link-local address"),
    ("febf:ffff::1", "is a link-local address"),
    ("fec0::1", "is a site-local address"),
    ("ff02::1", "is a multicast address"),
    ("ff05::1:3", "is a multicast address"),
    ("ff0e::1", "is a multicast address"),
    ("2001:db8::1", "is a documentation address"),
    ("3fff::1", "is a documentation address"),
    ("100::1", "is a discard-only address"),
    ("2001:2::1", "is not a globally routable address"),
    ("5f00::1", "is a reserved address"),
    # IPv4-mapped
    ("::ffff:10.0.0.1", "embeds 10.0.0.1, a private address"),
    ("::ffff:169.254.169.254", "embeds 169.254.169.254, a cloud metadata address"),
    ("::ffff:0.0.0.0", "embeds 0.0.0.0, an unspecified address"),
    # IPv4-compatible
    ("::127.0.0.1", "embeds 127.0.0.1, a loopback address"),
    ("::10.0.0.1", "embeds 10.0.0.1, a private address"),
    ("::169.254.169.254", "embeds 169.254.169.254, a cloud metadata address"),
    # NAT64, well-known and local-use prefixes
    ("64:ff9b::127.0.0.1", "embeds 127.0.0.1, a loopback address"),
    ("64:ff9b::10.0.0.1", "embeds 10.0.0.1, a private address"),
    ("64:ff9b::169.254.169.254", "embeds 169.254.169.254, a cloud metadata address"),
    ("64:ff9b:1::10.0.0.1", "embeds 10.0.0.1, a private address"),
    ("64:ff9b:1::8.8.8.8", "is a local-use NAT64 address"),
    # 6to4
    ("2002:7f00:1::1", "embeds 127.0.0.1, a loopback address"),
    ("2002:a00:1::1", "embeds 10.0.0.1, a private address"),
    ("2002:a9fe:a9fe::1", "embeds 169.254.169.254, a cloud metadata address"),
    # Teredo (client address stored inverted): 127.0.0.1, 10.0.0.1, 169.254.169.254, then a public client
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "embeds 127.0.0.1, a loopback address"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "embeds 10.0.0.1, a private address"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "embeds 169.254.169.254, a cloud metadata address"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "is not a globally routable address"),
    ("2001:0:a00:1::1", "embeds 10.0.0.1, a private address"),
]

LOOPBACK_ADDRESSES = [
    ("127.0.0.1", "is a loopback address"),
    ("127.255.255.254", "is a loopback address"),
    ("::1", "is a loopback address"),
    ("::ffff:127.0.0.1", "embeds 127.0.0.1, a loopback address"),
]

# URL hosts that the OS resolver turns into a loopback (or "this host") address, with the exact refusal.
LOOPBACK_SPELLINGS = [
    ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
    ("2130706433", "refused: 2130706433 resolves to 127.0.0.1, which is a loopback address"),
    ("0x7f000001", "refused: 0x7f000001 resolves to 127.0.0.1, which is a loopback address"),
    ("0177.1", "refused: 0177.1 resolves to 127.0.0.1, which is a loopback address"),
    ("0177.0.0.1", "refused: 0177.0.0.1 resolves to 127.0.0.1, which is a loopback address"),
    ("017700000001", "refused: 017700000001 resolves to 127.0.0.1, which is a loopback address"),
    ("0x7f.1", "refused: 0x7f.1 resolves to 127.0.0.1, which is a loopback address"),
    ("0x7f.0.0.1", "refused: 0x7f.0.0.1 resolves to 127.0.0.1, which is a loopback address"),
    ("127.1", "refused: 127.1 resolves to 127.0.0.1, which is a loopback address"),
    ("127.0.1", "refused: 127.0.1 resolves to 127.0.0.1, which is a loopback address"),
    ("127.000.000.001", "refused: 127.000.000.001 resolves to 127.0.0.1, which is a loopback address"),
    ("[::ffff:7f00:1]", "refused: ::ffff:7f00:1 embeds 127.0.0.1, a loopback address"),
    ("[::ffff:127.0.0.1]", "refused: ::ffff:7f00:1 embeds 127.0.0.1, a loopback address"),
    ("[0:0:0:0:0:ffff:7f00:1]", "refused: ::ffff:7f00:1 embeds 127.0.0.1, a loopback address"),
    ("[::1]", "refused: ::1 is a loopback address"),
    ("0.0.0.0", "refused: 0.0.0.0 is an unspecified address"),
    ("0", "refused: 0 resolves to 0.0.0.0, which is an unspecified address"),
]


def cases(table: list[tuple[str, str]]) -> list[Any]:
    """Parametrize rows, each test id being the address or host."""
    return [pytest.param(*row, id=row[0]) for row in table]


PUBLIC_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
]


# ------------------------------------------------------------------------------------------------------------
# The socket guard itself


def test_net_guard_fails_a_connect_outside_loopback(net_guard: NetGuard) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetGuardViolation):
            sock.connect(("10.255.255.1", 80))
    finally:
        sock.close()

    assert net_guard.violations == ["net_guard: socket.connect to ('10.255.255.1', 80) is outside loopback"]
    net_guard.violations.clear()


def test_net_guard_fails_connect_ex_and_create_connection(net_guard: NetGuard) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetGuardViolation):
            sock.connect_ex(("2001:db8::1", 443, 0, 0))
    finally:
        sock.close()
    with pytest.raises(NetGuardViolation):
        socket.create_connection(("example.com", 443), timeout=1)

    assert net_guard.violations == [
        "net_guard: socket.connect_ex to ('2001:db8::1', 443, 0, 0) is outside loopback",
        "net_guard: socket.create_connection to ('example.com', 443) is outside loopback",
    ]
    net_guard.violations.clear()


def test_net_guard_lets_loopback_through(local_server: LocalServer) -> None:
    with socket.create_connection(("127.0.0.1", local_server.port), timeout=2):
        pass
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        assert sock.connect_ex(("127.0.0.1", local_server.port)) == 0
    finally:
        sock.close()


# ------------------------------------------------------------------------------------------------------------
# Address policy


@pytest.mark.parametrize(("address", "predicate"), cases(REFUSED_ADDRESSES + LOOPBACK_ADDRESSES))
def test_policy_refuses_address(address: str, predicate: str) -> None:
    ip = ipaddress.ip_address(address)

    with pytest.raises(BlockedDestination) as excinfo:
        NO_ALLOWLIST.check(address, ip)

    # Plain loopback and private addresses (and their IPv4-mapped spelling) are a developer's own servers: the
    # refusal names the setting. Other spellings that embed one are attack forms and get no hint.
    shown = address.removeprefix("::ffff:")
    shown = f"[{shown}]" if ":" in shown else shown
    plain = predicate in ("is a loopback address", "is a private address")
    hinted = plain or (address.startswith("::ffff:") and predicate.endswith(("loopback address", "private address")))
    hint = f"; if it is your own server, add {shown} to CONNECTORS_ALLOWED_PRIVATE_HOSTS" if hinted else ""
    assert str(excinfo.value) == f"refused: {ip} {predicate}{hint}"
    assert excinfo.value.transient is False


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_policy_lets_public_address_through(address: str) -> None:
    assert NO_ALLOWLIST.check("api.example.com", ipaddress.ip_address(address)) is None


def test_teredo_test_addresses_embed_the_intended_clients() -> None:
    teredo = [a for a, _ in REFUSED_ADDRESSES if a.startswith("2001:0:4136:")]

    clients = [str(ipaddress.IPv6Address(a).teredo[1]) for a in teredo]

    assert clients == ["127.0.0.1", "10.0.0.1", "169.254.169.254", "8.8.8.8"]


def test_from_setting_parses_hosts_ips_and_networks() -> None:
    policy = AddressPolicy.from_setting(" Internal.Example.COM., 10.1.2.3 ,192.168.0.0/16,[::1], fd00::/8,,")

    assert policy.entries == (
        Entry(host="internal.example.com"),
        Entry(network=ipaddress.ip_network("10.1.2.3/32")),
        Entry(network=ipaddress.ip_network("192.168.0.0/16")),
        Entry(network=ipaddress.ip_network("::1/128")),
        Entry(network=ipaddress.ip_network("fd00::/8")),
    )


def test_from_setting_accepts_a_list() -> None:
    policy = AddressPolicy.from_setting(["localhost", "127.0.0.0/8,10.0.0.1"])

    assert policy.entries == (
        Entry(host="localhost"),
        Entry(network=ipaddress.ip_network("127.0.0.0/8")),
        Entry(network=ipaddress.ip_network("10.0.0.1/32")),
    )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("10.0.0.0/33", "is not a valid IP address or network"),
        ("fd00::/129", "is not a valid IP address or network"),
        ("host:0", "has an invalid port (1 to 65535)"),
        ("host:65536", "has an invalid port (1 to 65535)"),
        ("10.0.0.1:http", "has an invalid port (1 to 65535)"),
        ("[::1]:", "has an invalid port (1 to 65535)"),
        ("1.2.3.4:5:6", "is not a valid IP address or network"),
        ("http://x", "has an invalid port (1 to 65535)"),
        ("bad host", "is not a valid host name"),
    ],
)
def test_from_setting_rejects_malformed_entries(entry: str, problem: str) -> None:
    with pytest.raises(ValueError, match="CONNECTORS_ALLOWED_PRIVATE_HOSTS") as excinfo:
        AddressPolicy.from_setting(f"localhost,{entry}")

    assert str(excinfo.value) == f"CONNECTORS_ALLOWED_PRIVATE_HOSTS: {entry!r} {problem}"


def test_allowlisted_network_exempts_only_its_addresses() -> None:
    policy = AddressPolicy.from_setting("10.0.0.0/24")

    assert policy.check("svc.test", ipaddress.ip_address("10.0.0.200")) is None
    with pytest.raises(BlockedDestination) as excinfo:
        policy.check("svc.test", ipaddress.ip_address("10.0.1.1"))
    assert str(excinfo.value) == (
        "refused: svc.test resolves to 10.0.1.1, which is a private address"
        "; if it is your own server, add svc.test to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )


def test_blocked_destination_wrapped_by_requests_is_unwrapped() -> None:
    blocked = BlockedDestination("refused: 10.0.0.1 is a private address")
    wrapped = requests.exceptions.ConnectionError(blocked)

    assert translate(wrapped, "http://10.0.0.1/x?key=secret") is blocked


# ------------------------------------------------------------------------------------------------------------
# The client refuses before anything is sent


@pytest.fixture
def strict_client() -> SafeHttpClient:
    return SafeHttpClient(NO_ALLOWLIST)


@pytest.mark.parametrize(("host", "message"), cases(LOOPBACK_SPELLINGS))
def test_loopback_spelling_is_refused_and_server_sees_nothing(
    host: str, message: str, local_server: LocalServer, strict_client: SafeHttpClient
) -> None:
    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, f"http://{host}:{local_server.port}/admin?token=secret")

    refusal, _, hint = str(excinfo.value).partition("; ")
    assert refusal == message
    assert hint in (
        "",
        f"if it is your own server, add 127.0.0.1:{local_server.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS",
        f"if it is your own server, add [::1]:{local_server.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS",
    )
    assert local_server.connections == 0
    assert local_server.hits == 0


def test_localhost_is_refused_and_server_sees_nothing(local_server: LocalServer, strict_client: SafeHttpClient) -> None:
    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, f"http://localhost:{local_server.port}/")

    assert str(excinfo.value).split("; ")[0] in {
        "refused: localhost resolves to 127.0.0.1, which is a loopback address",
        "refused: localhost resolves to ::1, which is a loopback address",
    }
    assert str(excinfo.value).endswith(f"add localhost:{local_server.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS")
    assert local_server.connections == 0


@pytest.mark.parametrize(("address", "predicate"), cases(REFUSED_ADDRESSES))
def test_literal_address_in_url_is_refused(address: str, predicate: str, strict_client: SafeHttpClient) -> None:
    # Nothing is resolved or patched: the connect-time check must refuse before any socket connects,
    # and net_guard would fail the test if one tried.
    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, url_for(address))

    assert refusal_of(excinfo.value) == f"refused: {ipaddress.ip_address(address)} {predicate}"


@pytest.mark.parametrize(("address", "predicate"), cases(REFUSED_ADDRESSES + LOOPBACK_ADDRESSES))
def test_name_resolving_to_refused_address_is_refused(
    address: str, predicate: str, fake_dns: FakeDns, strict_client: SafeHttpClient
) -> None:
    fake_dns.add("internal.test", address)

    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, "http://internal.test/latest/meta-data?token=secret")

    ip = ipaddress.ip_address(address)
    assert refusal_of(excinfo.value) == f"refused: internal.test resolves to {ip}, which {predicate}"
    assert fake_dns.lookups == ["internal.test"]


@pytest.mark.parametrize("answers", [("93.184.215.14", "10.0.0.1"), ("10.0.0.1", "93.184.215.14")])
def test_name_with_any_private_address_is_refused(
    answers: tuple[str, str], fake_dns: FakeDns, strict_client: SafeHttpClient
) -> None:
    fake_dns.add("mixed.test", *answers)

    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, "https://mixed.test/")

    assert refusal_of(excinfo.value) == "refused: mixed.test resolves to 10.0.0.1, which is a private address"


def test_name_mixing_ipv6_public_and_ula_is_refused(fake_dns: FakeDns, strict_client: SafeHttpClient) -> None:
    fake_dns.add("dual.test", "2606:4700:4700::1111", "fd00::5")

    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, "http://dual.test/")

    assert refusal_of(excinfo.value) == "refused: dual.test resolves to fd00::5, which is a private address"


def test_uppercase_and_trailing_dot_host_is_still_checked(fake_dns: FakeDns, strict_client: SafeHttpClient) -> None:
    fake_dns.add("internal.test", "10.0.0.1")

    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, "http://INTERNAL.test./")

    assert refusal_of(excinfo.value) == "refused: internal.test resolves to 10.0.0.1, which is a private address"


# ------------------------------------------------------------------------------------------------------------
# DNS rebinding: the address checked is the address connected to


@pytest.fixture
def public_ip_served_locally(
    monkeypatch: pytest.MonkeyPatch, local_server: LocalServer
) -> Callable[[], list[tuple[str, int]]]:
    """Route connects to 93.184.215.14 to the local server; return the addresses the client connected to."""
    guarded_connect = socket.socket.connect
    attempts: list[tuple[str, int]] = []

    def connect(sock: socket.socket, address: Any) -> None:
        attempts.append((address[0], address[1]))
        if address[0] == "93.184.215.14":
            return guarded_connect(sock, ("127.0.0.1", local_server.port))
        return guarded_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return lambda: attempts


def test_dns_rebinding_cannot_reach_the_private_answer(
    fake_dns: FakeDns,
    local_server: LocalServer,
    public_ip_served_locally: Callable[[], list[tuple[str, int]]],
    strict_client: SafeHttpClient,
) -> None:
    # The resolver answers public first and private afterwards; each connection resolves exactly once and
    # connects to what it checked, so the private answer is only ever seen by the check.
    fake_dns.add("rebind.test", "93.184.215.14")
    fake_dns.add("rebind.test", "10.0.0.1")
    local_server.route("/", Reply(headers={"Connection": "close"}))

    first = get(strict_client, "http://rebind.test/")
    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, "http://rebind.test/")

    assert first.status_code == 200
    assert refusal_of(excinfo.value) == "refused: rebind.test resolves to 10.0.0.1, which is a private address"
    assert fake_dns.lookups == ["rebind.test", "rebind.test"]
    assert public_ip_served_locally() == [("93.184.215.14", 80)]
    assert local_server.hits == 1
    assert local_server.requests[0].header("Host") == "rebind.test"


def test_public_name_resolves_once_and_connects_to_the_checked_address(
    fake_dns: FakeDns,
    local_server: LocalServer,
    public_ip_served_locally: Callable[[], list[tuple[str, int]]],
    strict_client: SafeHttpClient,
) -> None:
    fake_dns.add("api.example.test", "93.184.215.14")

    response = get(strict_client, "http://api.example.test/v1/ping")

    assert response.status_code == 200
    assert response.content == b"ok"
    assert fake_dns.lookups == ["api.example.test"]
    assert public_ip_served_locally() == [("93.184.215.14", 80)]


# ------------------------------------------------------------------------------------------------------------
# Allowlist (CONNECTORS_ALLOWED_PRIVATE_HOSTS)


@pytest.mark.parametrize(
    "setting", ["127.0.0.1", "127.0.0.0/8", "127.0.0.0/8,10.0.0.0/8", "api.local.test", "API.Local.Test"]
)
def test_allowlisted_host_ip_or_network_reaches_local_server(
    setting: str, fake_dns: FakeDns, local_server: LocalServer
) -> None:
    fake_dns.add("api.local.test", "127.0.0.1")
    client = SafeHttpClient(AddressPolicy.from_setting(setting))

    response = get(client, f"http://api.local.test:{local_server.port}/hello")

    assert response.status_code == 200
    assert local_server.hits == 1


def test_allowlisted_name_does_not_exempt_other_names_for_the_same_address(
    fake_dns: FakeDns, local_server: LocalServer
) -> None:
    fake_dns.add("other.test", "127.0.0.1")
    client = SafeHttpClient(AddressPolicy.from_setting("api.local.test"))

    with pytest.raises(BlockedDestination) as excinfo:
        get(client, f"http://other.test:{local_server.port}/")

    assert refusal_of(excinfo.value) == "refused: other.test resolves to 127.0.0.1, which is a loopback address"
    assert local_server.connections == 0


def test_allowlisted_ip_does_not_exempt_its_neighbour(local_server: LocalServer) -> None:
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.2"))

    with pytest.raises(BlockedDestination):
        get(client, f"{local_server.url}/")

    assert local_server.connections == 0


def test_redirect_from_allowlisted_name_to_its_ip_is_refused(fake_dns: FakeDns, local_server: LocalServer) -> None:
    fake_dns.add("api.local.test", "127.0.0.1")
    local_server.route("/start", Reply(302, headers={"Location": f"{local_server.url}/internal"}))
    client = SafeHttpClient(AddressPolicy.from_setting("api.local.test"))

    with pytest.raises(BlockedDestination) as excinfo:
        get(client, f"http://api.local.test:{local_server.port}/start")

    assert refusal_of(excinfo.value) == "refused: 127.0.0.1 is a loopback address"
    assert [r.path for r in local_server.requests] == ["/start"]


def test_redirect_to_metadata_address_is_refused(local_server: LocalServer) -> None:
    local_server.route("/start", Reply(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"))

    with pytest.raises(BlockedDestination) as excinfo:
        get(client, f"{local_server.url}/start")

    assert refusal_of(excinfo.value) == "refused: 169.254.169.254 is a cloud metadata address"
    assert local_server.hits == 1


def test_redirect_to_name_resolving_private_is_refused(fake_dns: FakeDns, local_server: LocalServer) -> None:
    fake_dns.add("internal.test", "10.1.2.3")
    local_server.route("/start", Reply(301, headers={"Location": "http://internal.test/admin"}))
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"))

    with pytest.raises(BlockedDestination) as excinfo:
        get(client, f"{local_server.url}/start")

    assert refusal_of(excinfo.value) == "refused: internal.test resolves to 10.1.2.3, which is a private address"


# ------------------------------------------------------------------------------------------------------------
# HTTPS: the socket is pinned to the checked IP, TLS still verifies the URL's host name


def test_https_pins_the_address_and_uses_the_host_name_for_sni(
    fake_dns: FakeDns, local_tls_server: LocalServer
) -> None:
    fake_dns.add("localhost", "127.0.0.1")
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"), ca_bundle=TEST_CA_BUNDLE)

    response = get(client, f"https://localhost:{local_tls_server.port}/secure")

    assert response.status_code == 200
    assert response.url == f"https://localhost:{local_tls_server.port}/secure"
    assert fake_dns.lookups == ["localhost"]
    assert local_tls_server.server_names == ["localhost"]
    assert local_tls_server.requests[0].header("Host") == f"localhost:{local_tls_server.port}"


def test_https_certificate_is_verified_against_the_host_name_not_the_pinned_ip(
    fake_dns: FakeDns, local_tls_server: LocalServer
) -> None:
    # The certificate is valid for 127.0.0.1, the address connected to, but not for the URL's name.
    fake_dns.add("secure.test", "127.0.0.1")
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"), ca_bundle=TEST_CA_BUNDLE)

    with pytest.raises(ConnectionFailed) as excinfo:
        get(client, f"https://secure.test:{local_tls_server.port}/secure")

    assert str(excinfo.value) == (
        f"TLS certificate verification failed for https://secure.test:{local_tls_server.port}/secure: "
        "Hostname mismatch, certificate is not valid for 'secure.test'."
    )
    assert excinfo.value.transient is False
    assert local_tls_server.server_names == ["secure.test"]
    assert local_tls_server.hits == 0


def test_https_with_untrusted_certificate_fails(local_tls_server: LocalServer) -> None:
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"))

    with pytest.raises(ConnectionFailed) as excinfo:
        get(client, f"{local_tls_server.url}/")

    assert str(excinfo.value) == (
        f"TLS certificate verification failed for https://127.0.0.1:{local_tls_server.port}/: "
        "unable to get local issuer certificate"
    )
    assert excinfo.value.transient is False
    assert local_tls_server.hits == 0


def test_https_to_refused_address_never_starts_a_handshake(local_tls_server: LocalServer) -> None:
    client = SafeHttpClient(NO_ALLOWLIST, ca_bundle=TEST_CA_BUNDLE)

    with pytest.raises(BlockedDestination):
        get(client, f"https://127.0.0.1:{local_tls_server.port}/")

    assert local_tls_server.connections == 0
    assert local_tls_server.server_names == []


# ------------------------------------------------------------------------------------------------------------
# Allowlist entries with a port, and the hint in refusals


@pytest.mark.parametrize(
    ("setting", "entry"),
    [
        ("localhost:8080", Entry(host="localhost", port=8080)),
        ("127.0.0.1:9000", Entry(network=ipaddress.ip_network("127.0.0.1/32"), port=9000)),
        ("10.0.0.0/8:443", Entry(network=ipaddress.ip_network("10.0.0.0/8"), port=443)),
        ("[::1]:8443", Entry(network=ipaddress.ip_network("::1/128"), port=8443)),
        ("[fd00::/8]:80", Entry(network=ipaddress.ip_network("fd00::/8"), port=80)),
        ("[::1]", Entry(network=ipaddress.ip_network("::1/128"))),
    ],
)
def test_entries_may_carry_a_port(setting: str, entry: Entry) -> None:
    assert AddressPolicy.from_setting(setting).entries == (entry,)


@pytest.mark.parametrize(
    ("setting", "host", "address"),
    [
        ("127.0.0.1:9000", "127.0.0.1", "127.0.0.1"),
        ("localhost:9000", "localhost", "127.0.0.1"),
        ("10.0.0.0/8:9000", "svc.internal", "10.1.2.3"),
        ("[::1]:9000", "::1", "::1"),
    ],
)
def test_an_entry_with_a_port_allows_only_that_port(setting: str, host: str, address: str) -> None:
    policy = AddressPolicy.from_setting(setting)
    ip = ipaddress.ip_address(address)

    assert policy.check(host, ip, 9000) is None
    with pytest.raises(BlockedDestination) as excinfo:
        policy.check(host, ip, 9001)
    assert str(excinfo.value).endswith("(CONNECTORS_ALLOWED_PRIVATE_HOSTS allows it only on port 9000)")
    with pytest.raises(BlockedDestination):
        policy.check(host, ip)


def test_an_entry_without_a_port_allows_every_port() -> None:
    policy = AddressPolicy.from_setting("127.0.0.1,localhost")

    for port in (None, 80, 9000, 65535):
        assert policy.check("localhost", ipaddress.ip_address("127.0.0.1"), port) is None


def test_connections_are_judged_with_their_port(local_server: LocalServer) -> None:
    allowed = SafeHttpClient(AddressPolicy.from_setting(f"127.0.0.1:{local_server.port}"))
    other_port = SafeHttpClient(AddressPolicy.from_setting(f"127.0.0.1:{local_server.port + 1}"))

    assert allowed.send(OutboundRequest("GET", f"{local_server.url}/x")).status_code == 200
    with pytest.raises(BlockedDestination) as excinfo:
        other_port.send(OutboundRequest("GET", f"{local_server.url}/x"))
    assert str(excinfo.value) == (
        f"refused: 127.0.0.1 is a loopback address (CONNECTORS_ALLOWED_PRIVATE_HOSTS allows it only on port "
        f"{local_server.port + 1})"
    )
    assert local_server.hits == 1


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "169.254.1.1", "100.64.0.1", "0.0.0.0"],
)
def test_refusals_of_addresses_that_are_no_developer_server_do_not_name_the_setting(address: str) -> None:
    with pytest.raises(BlockedDestination) as excinfo:
        NO_ALLOWLIST.check("metadata.test", ipaddress.ip_address(address), 80)

    assert "CONNECTORS_ALLOWED_PRIVATE_HOSTS" not in str(excinfo.value)
