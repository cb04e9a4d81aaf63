"""SSRF: the address forms, redirects and environment tricks that tests/engine/test_ssrf.py does not already
cover, collected from GitLab's UrlBlocker spec, Sentry's net/socket.py and `advocate`.

Every form is tried twice: as the literal host of the URL (the OS resolver or the IDNA codec turns it into an
address at connect time) and as a DNS name that resolves to its address (fake_dns). Nothing connects outside
loopback (net_guard), and loopback forms are aimed at a live local server that must see no connection.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from connectors.engine.http import (
    AddressPolicy,
    BlockedDestination,
    ConnectionFailed,
    HttpError,
    InvalidRequest,
    OutboundRequest,
    SafeHttpClient,
)
from tests.local_server import LocalServer, Reply
from tests.net_guard import FakeDns

pytest_plugins = ["tests.local_server"]

METADATA = "a cloud metadata address"
CGNAT = "a shared (CGNAT) address"
PRIVATE = "a private address"
LOOPBACK = "a loopback address"

# (host as written in the URL, the address it means, why it is refused)
FORMS = [
    # Cloud metadata, spelled every way an inet_aton-style resolver accepts
    ("2852039166", "169.254.169.254", METADATA),
    ("0xa9fea9fe", "169.254.169.254", METADATA),
    ("0xA9FEA9FE", "169.254.169.254", METADATA),
    ("025177524776", "169.254.169.254", METADATA),
    ("0251.0376.0251.0376", "169.254.169.254", METADATA),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254", METADATA),
    ("0xa9.254.169.254", "169.254.169.254", METADATA),
    ("169.254.43518", "169.254.169.254", METADATA),
    ("169.16689662", "169.254.169.254", METADATA),
    ("0251.0376.43518", "169.254.169.254", METADATA),
    ("169.254.169.254.", "169.254.169.254", METADATA),
    ("[::ffff:a9fe:a9fe]", "::ffff:169.254.169.254", METADATA),
    ("[0:0:0:0:0:ffff:a9fe:a9fe]", "::ffff:169.254.169.254", METADATA),
    ("[::ffff:169.254.169.254]", "::ffff:169.254.169.254", METADATA),
    ("[::a9fe:a9fe]", "::169.254.169.254", METADATA),
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::169.254.169.254", METADATA),
    ("[64:ff9b::169.254.169.254]", "64:ff9b::169.254.169.254", METADATA),
    ("[64:ff9b:1::a9fe:a9fe]", "64:ff9b:1::a9fe:a9fe", METADATA),
    ("[2002:a9fe:a9fe::1]", "2002:a9fe:a9fe::1", METADATA),
    ("[2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff]", "2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff", METADATA),
    ("[2001:0:4136:e378:8000:63bf:5601:5601]", "2001:0:4136:e378:8000:63bf:5601:5601", METADATA),
    ("[fd00:ec2::254]", "fd00:ec2::254", PRIVATE),  # AWS's IPv6 metadata endpoint
    ("１６９.２５４.１６９.２５４", "169.254.169.254", METADATA),  # noqa: RUF001 - fullwidth digits, folded by IDNA
    ("169。254。169。254", "169.254.169.254", METADATA),  # ideographic full stops
    # Carrier-grade NAT (100.64.0.0/10) in every wrapping
    ("100.64.0.1", "100.64.0.1", CGNAT),
    ("100.100.100.200", "100.100.100.200", CGNAT),  # Alibaba Cloud's metadata address
    ("1681915905", "100.64.0.1", CGNAT),
    ("0x64400001", "100.64.0.1", CGNAT),
    ("0144.0100.0.01", "100.64.0.1", CGNAT),
    ("100.64.1", "100.64.0.1", CGNAT),
    ("100.4194305", "100.64.0.1", CGNAT),
    ("[::ffff:6440:1]", "::ffff:100.64.0.1", CGNAT),
    ("[::ffff:100.127.255.254]", "::ffff:100.127.255.254", CGNAT),
    ("[::100.64.0.1]", "::100.64.0.1", CGNAT),
    ("[64:ff9b::6440:1]", "64:ff9b::100.64.0.1", CGNAT),
    ("[64:ff9b::100.127.0.1]", "64:ff9b::100.127.0.1", CGNAT),
    ("[64:ff9b:1::6440:1]", "64:ff9b:1::6440:1", CGNAT),
    ("[2002:6440:1::1]", "2002:6440:1::1", CGNAT),
    ("[2002:647f:ffff::1]", "2002:647f:ffff::1", CGNAT),
    ("[2001:0:4136:e378:8000:63bf:9bbf:fffe]", "2001:0:4136:e378:8000:63bf:9bbf:fffe", CGNAT),
    # RFC 1918
    ("10.1", "10.0.0.1", PRIVATE),
    ("167772161", "10.0.0.1", PRIVATE),
    ("0xa000001", "10.0.0.1", PRIVATE),
    ("012.0.0.1", "10.0.0.1", PRIVATE),
    ("0xa.0.0.1", "10.0.0.1", PRIVATE),
    ("10.0.1", "10.0.0.1", PRIVATE),
    ("3232235521", "192.168.0.1", PRIVATE),
    ("0xc0a80001", "192.168.0.1", PRIVATE),
    ("0300.0250.0.1", "192.168.0.1", PRIVATE),
    ("192.168.1", "192.168.0.1", PRIVATE),
    ("2886729729", "172.16.0.1", PRIVATE),
    ("0xac100001", "172.16.0.1", PRIVATE),
    ("0254.0020.0.1", "172.16.0.1", PRIVATE),
    ("[::ffff:a00:1]", "::ffff:10.0.0.1", PRIVATE),
    ("[::ffff:c0a8:1]", "::ffff:192.168.0.1", PRIVATE),
    ("[::ffff:ac10:1]", "::ffff:172.16.0.1", PRIVATE),
    ("[64:ff9b::c0a8:1]", "64:ff9b::192.168.0.1", PRIVATE),
    ("[2002:c0a8:1::1]", "2002:c0a8:1::1", PRIVATE),
    ("[2002:ac10:1::1]", "2002:ac10:1::1", PRIVATE),
    ("[fd00::1]", "fd00::1", PRIVATE),
    ("[FD12:3456:789A::1]", "fd12:3456:789a::1", PRIVATE),
    ("１０.０.０.１", "10.0.0.1", PRIVATE),  # noqa: RUF001
    # Everything else that is not globally routable
    ("0x0", "0.0.0.0", "an unspecified address"),
    ("0.0", "0.0.0.0", "an unspecified address"),
    ("[::]", "::", "an unspecified address"),
    ("[::ffff:0:0]", "::ffff:0.0.0.0", "an unspecified address"),
    ("4294967295", "255.255.255.255", "a broadcast address"),
    ("0xe00000fb", "224.0.0.251", "a multicast address"),
    ("[ff02::fb]", "ff02::fb", "a multicast address"),
    ("[fe80::1%25eth0]", "fe80::1", "a link-local address"),
    ("[fe80::a9fe:a9fe]", "fe80::a9fe:a9fe", "a link-local address"),
    ("3221225985", "192.0.2.1", "a documentation address"),
    ("[2001:db8::a9fe:a9fe]", "2001:db8::a9fe:a9fe", "a documentation address"),
]

# Loopback spellings that test_ssrf.py does not have, aimed at a live local server.
LOOPBACK_FORMS = [
    ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
    ("0x7F.0.0.1", "127.0.0.1"),
    ("0177.00.00.01", "127.0.0.1"),
    ("00000177.0.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("127.16777215", "127.255.255.255"),
    ("127.0.65535", "127.0.255.255"),
    ("2130706434", "127.0.0.2"),
    ("[0000:0000:0000:0000:0000:0000:0000:0001]", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[::ffff:7f00:2]", "::ffff:127.0.0.2"),
    ("[::127.0.0.2]", "::127.0.0.2"),
    ("[64:ff9b::7f00:1]", "64:ff9b::127.0.0.1"),
    ("１２７.０.０.１", "127.0.0.1"),  # noqa: RUF001
    ("127。0。0。1", "127.0.0.1"),
    ("LOCALHOST", "127.0.0.1"),
    ("localhost.", "127.0.0.1"),
]


def get(client: SafeHttpClient, url: str, method: str = "GET") -> Any:
    return client.send(OutboundRequest(method=method, url=url, timeout=3))


def assert_refused_before_sending(error: HttpError) -> None:
    """Refused by the policy or as malformed, or (a trailing-dot spelling, which is a DNS name to the resolver)
    not resolvable: in each case nothing was sent, which net_guard and the local server check on their side."""
    unresolvable = isinstance(error, ConnectionFailed) and str(error).startswith("could not resolve the host")
    assert isinstance(error, BlockedDestination | InvalidRequest) or unresolvable, repr(error)


def rows(table: list[tuple]) -> list[Any]:
    return [pytest.param(*row, id=row[0]) for row in table]


@pytest.fixture
def strict_client() -> SafeHttpClient:
    return SafeHttpClient(AddressPolicy.from_setting(""))


def test_the_forms_are_many_and_mean_what_the_table_says():
    assert len(FORMS) + len(LOOPBACK_FORMS) >= 60
    for _, address, _ in FORMS:
        ipaddress.ip_address(address)  # the table's addresses are real addresses


@pytest.mark.parametrize("host", [row[0] for row in FORMS if row[0][0].isdigit() and "." in row[0]])
def test_numeric_forms_resolve_to_the_tables_address(host):
    # The OS resolver is the one that turns these spellings into addresses; check the table against it.
    expected = next(address for h, address, _ in FORMS if h == host)
    try:
        infos = socket.getaddrinfo(host.rstrip("."), 80, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        pytest.skip("this resolver does not accept the spelling (then no connection is possible either)")
    assert {info[4][0] for info in infos} == {expected}


@pytest.mark.parametrize(("host", "address", "reason"), rows(FORMS))
def test_form_as_literal_host_is_refused_before_connecting(host, address, reason, strict_client):
    with pytest.raises(HttpError) as excinfo:
        get(strict_client, f"http://{host}:8080/latest/meta-data?token=secret")

    error = excinfo.value
    assert_refused_before_sending(error)
    if isinstance(error, BlockedDestination):
        assert str(error).startswith("refused: ")
        assert reason in str(error)
    assert "secret" not in str(error)


@pytest.mark.parametrize(("host", "address", "reason"), rows(FORMS))
def test_form_as_dns_answer_is_refused_before_connecting(host, address, reason, fake_dns: FakeDns, strict_client):
    fake_dns.add("innocent.example.test", address)

    with pytest.raises(BlockedDestination) as excinfo:
        get(strict_client, "https://innocent.example.test/latest/meta-data")

    assert str(excinfo.value).startswith(f"refused: innocent.example.test resolves to {ipaddress.ip_address(address)}")
    assert reason in str(excinfo.value)


@pytest.mark.parametrize(("host", "address"), rows(LOOPBACK_FORMS))
def test_loopback_form_as_literal_host_never_reaches_the_server(
    host, address, local_server: LocalServer, strict_client
):
    with pytest.raises(HttpError) as excinfo:
        get(strict_client, f"http://{host}:{local_server.port}/admin")

    assert_refused_before_sending(excinfo.value)
    assert local_server.connections == 0


@pytest.mark.parametrize(("host", "address"), rows(LOOPBACK_FORMS))
def test_loopback_form_as_dns_answer_never_reaches_the_server(
    host, address, fake_dns: FakeDns, local_server: LocalServer, strict_client
):
    fake_dns.add("innocent.example.test", address)

    with pytest.raises(BlockedDestination):
        get(strict_client, f"http://innocent.example.test:{local_server.port}/admin")

    assert local_server.connections == 0


# ------------------------------------------------------------------------------------------------------------
# URL parser confusion: the host that is checked is the host that is connected to


@pytest.mark.parametrize(
    "url",
    [
        "http://public.example.test@10.0.0.1/",
        "http://public.example.test:80@10.0.0.1/",
        "http://10.0.0.1#@public.example.test/",
        "http://10.0.0.1?@public.example.test/",
        "http://user:pass@[::ffff:a00:1]/",
        "http://10.0.0.1:80\\@public.example.test/",
        "http://%31%30.0.0.1/",
        "HTTP://10.0.0.1/",
        "http://10.0.0.1:/",
        "http://10.0.0.1:0080/",
    ],
)
def test_url_tricks_cannot_smuggle_a_private_host(url, fake_dns: FakeDns, strict_client):
    fake_dns.add("public.example.test", "93.184.215.14")

    with pytest.raises(HttpError) as excinfo:
        get(strict_client, url)

    assert isinstance(excinfo.value, BlockedDestination | InvalidRequest)
    assert fake_dns.lookups == []  # the decoy public name was never the one connected to


# ------------------------------------------------------------------------------------------------------------
# Redirects: an allowlisted origin (by name only) redirecting to forms it must not reach


@pytest.fixture
def origin(fake_dns: FakeDns, local_server: LocalServer) -> tuple[SafeHttpClient, str]:
    """A client for which only the host name api.local.test (-> 127.0.0.1) is allowed, and its base URL."""
    fake_dns.add("api.local.test", "127.0.0.1")
    return SafeHttpClient(AddressPolicy.from_setting("api.local.test")), f"http://api.local.test:{local_server.port}"


@pytest.mark.parametrize(
    ("status", "location_for", "refused"),
    [
        (302, lambda port: "http://2852039166/latest/meta-data/", BlockedDestination),
        (301, lambda port: "http://[::ffff:a9fe:a9fe]/latest/", BlockedDestination),
        (307, lambda port: "http://[64:ff9b::6440:1]/", BlockedDestination),
        (308, lambda port: "http://[2002:a9fe:a9fe::1]/", BlockedDestination),
        (303, lambda port: "//10.0.0.1/protocol-relative", BlockedDestination),
        (302, lambda port: f"http://0x7f.1:{port}/loopback-by-address", BlockedDestination),
        (302, lambda port: f"http://[::1]:{port}/loopback-v6", BlockedDestination),
        (302, lambda port: "http://api.local.test@10.0.0.1/userinfo-trick", BlockedDestination),
        (302, lambda port: "http://internal.test/by-name", BlockedDestination),
        (302, lambda port: "file:///etc/passwd", InvalidRequest),
        (302, lambda port: "gopher://127.0.0.1:6379/_INFO", InvalidRequest),
        (302, lambda port: "dict://127.0.0.1:11211/stats", InvalidRequest),
        (302, lambda port: "ftp://10.0.0.1/", InvalidRequest),
    ],
    ids=[
        "decimal-metadata",
        "mapped-metadata",
        "nat64-cgnat",
        "6to4-metadata",
        "protocol-relative-private",
        "hex-loopback",
        "ipv6-loopback",
        "userinfo-trick",
        "name-resolving-private",
        "file",
        "gopher",
        "dict",
        "ftp",
    ],
)
def test_redirect_to_a_forbidden_target_is_refused_and_sends_nothing_there(
    status, location_for, refused, origin, fake_dns: FakeDns, local_server: LocalServer
):
    client, base = origin
    fake_dns.add("internal.test", "10.1.2.3")
    local_server.route("/start", Reply(status, headers={"Location": location_for(local_server.port)}))

    with pytest.raises(refused):
        get(client, f"{base}/start")

    assert [r.path for r in local_server.requests] == ["/start"]


def test_redirect_chain_is_checked_at_every_hop(origin, local_server: LocalServer):
    client, base = origin
    local_server.route("/one", Reply(302, headers={"Location": f"{base}/two"}))
    local_server.route("/two", Reply(307, headers={"Location": "/three"}))
    local_server.route("/three", Reply(301, headers={"Location": "http://169.254.169.254/"}))

    with pytest.raises(BlockedDestination) as excinfo:
        get(client, f"{base}/one")

    assert str(excinfo.value) == "refused: 169.254.169.254 is a cloud metadata address"
    assert [r.path for r in local_server.requests] == ["/one", "/two", "/three"]


def test_redirected_post_to_a_private_address_is_refused(origin, local_server: LocalServer):
    client, base = origin
    local_server.route("/form", Reply(303, headers={"Location": "http://192.168.1.1/router/reboot"}))

    with pytest.raises(BlockedDestination):
        client.send(OutboundRequest(method="POST", url=f"{base}/form", body=b"a=1", timeout=3))


def test_rebinding_between_redirect_hops_is_caught(origin, fake_dns: FakeDns, local_server: LocalServer):
    # The redirect target's name answers loopback-then-private; it is resolved (and checked) when connected to.
    client, base = origin
    fake_dns.add("flip.test", "10.9.9.9")
    local_server.route("/start", Reply(302, headers={"Location": "http://flip.test/"}))

    with pytest.raises(BlockedDestination) as excinfo:
        get(client, f"{base}/start")

    assert str(excinfo.value) == (
        "refused: flip.test resolves to 10.9.9.9, which is a private address"
        "; if it is your own server, add flip.test:80 to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )


# ------------------------------------------------------------------------------------------------------------
# The environment cannot route around the policy


@pytest.mark.parametrize(
    "variables",
    [
        ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"),
        ("http_proxy", "https_proxy", "all_proxy"),
    ],
)
def test_proxy_variables_cannot_carry_a_refused_request(monkeypatch, variables, strict_client):
    with LocalServer() as proxy:
        for name in variables:
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv("NO_PROXY", "")

        with pytest.raises(BlockedDestination):
            get(strict_client, "http://169.254.169.254/latest/meta-data/")
        with pytest.raises(BlockedDestination):
            get(strict_client, "http://10.0.0.1/")

        assert proxy.connections == 0


def test_no_proxy_cannot_exempt_a_host_from_the_policy(monkeypatch, strict_client, local_server: LocalServer):
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    with pytest.raises(BlockedDestination):
        get(strict_client, f"{local_server.url}/")

    assert local_server.connections == 0


def test_a_netrc_file_cannot_add_credentials(monkeypatch, tmp_path, fake_dns: FakeDns, local_server: LocalServer):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.local.test login stolen password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    fake_dns.add("api.local.test", "127.0.0.1")
    client = SafeHttpClient(AddressPolicy.from_setting("api.local.test"))

    get(client, f"http://api.local.test:{local_server.port}/x")

    assert local_server.requests[0].header("Authorization") is None
