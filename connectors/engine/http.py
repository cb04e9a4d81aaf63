"""SSRF-safe outbound HTTP for connector steps.

Connector steps call URLs chosen by tenants, with tenants' credentials, from inside our network. Everything
here exists so that such a call can only reach globally routable addresses (plus the operator's explicit
allowlist, ``CONNECTORS_ALLOWED_PRIVATE_HOSTS``), whatever the URL, DNS or redirects say.

How the address check works:

* The check happens at connect time, inside the urllib3 connection (``_SafeConnectionMixin._new_conn``).
  The host is resolved with ``socket.getaddrinfo`` exactly once per connection, every resolved address is
  checked, and the socket is connected to one of those checked addresses itself. There is no second lookup
  between "check" and "connect", so DNS rebinding has no window. Because the check sits below URL parsing,
  every spelling of an address that the OS resolver accepts (``2130706433``, ``0x7f000001``, ``0177.1``,
  ``127.1``, ``[::ffff:7f00:1]`` ...) is judged by the address it really resolves to.
* A name that resolves to several addresses is refused when ANY of them is refused. A name straddling public
  and private addresses is suspicious, and connecting only to the allowed ones would make the outcome depend
  on resolver ordering. The allowed addresses are then tried in resolver order.
* HTTPS: only the TCP socket is pinned to the checked IP. urllib3 wraps that socket with TLS using the
  connection's original host name, so SNI, certificate verification and the ``Host`` header all keep using
  the name from the URL.
* Redirects are followed here, not by requests, so every hop goes through the same checks, and credentials
  are dropped when a hop leaves the origin.

The timeout of a request is a total deadline (connect, TLS, sending, status line, headers and every read of
the body, over all redirects): the sockets of this client re-arm their timeout to what is left before every
send and receive (``_DeadlineSocket``), so a server that drips one byte per second cannot stretch a call
beyond it. Only DNS resolution is outside the deadline (``getaddrinfo`` cannot be interrupted).

Nothing in this module imports Django: the caller passes the allowlist setting in.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import unquote_plus, urljoin

import requests
import urllib3
from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util import Url, parse_url
from urllib3.util.connection import allowed_gai_family

from connectors.engine import allowlist
from connectors.engine.spec import DEFAULT_TIMEOUT_SECONDS

__all__ = [
    "AddressPolicy",
    "BlockedDestination",
    "ConnectionFailed",
    "HttpError",
    "InvalidRequest",
    "OutboundRequest",
    "OutboundResponse",
    "RequestTimeout",
    "ResponseTooLarge",
    "SafeHttpClient",
    "TooManyRedirects",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# ------------------------------------------------------------------------------------------------------------
# Errors


class HttpError(Exception):
    """An outbound request failed. ``transient`` tells the runner whether trying again can help.

    Messages never contain header values or the query string (both may carry secrets); URLs appear as
    ``scheme://host:port/path`` only.
    """

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if transient is not None:
            self.transient = transient

    def __str__(self) -> str:
        return self.message


class BlockedDestination(HttpError):
    """The destination address is refused by the address policy. Nothing was sent."""


class InvalidRequest(HttpError):
    """The request cannot be sent as given (bad URL, scheme, method, header or timeout). Nothing was sent."""


class TooManyRedirects(HttpError):
    """The server redirected more often than the client allows."""


class ResponseTooLarge(HttpError):
    """The response body is larger than the client's limit; reading stopped at the limit."""


class ConnectionFailed(HttpError):
    """The connection could not be made or broke. Transient, except for TLS certificate failures."""

    transient = True


class RequestTimeout(HttpError):
    """Connecting or waiting for the response took longer than the request's timeout."""

    transient = True


# ------------------------------------------------------------------------------------------------------------
# Address policy

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
        literal = _parse_ip(host.strip("[]"))
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
        if _parse_ip(name) is not None or _is_ipv4_spelling(name):
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


# ------------------------------------------------------------------------------------------------------------
# The total deadline of the request being sent by this thread (a time.monotonic() value), or None.

_deadline: ContextVar[float | None] = ContextVar("outbound_request_deadline", default=None)


class _DeadlineMixin:
    """Before every send and receive, the socket's timeout becomes what is left of the request's deadline."""

    def _arm(self) -> None:
        deadline = _deadline.get()
        if deadline is None:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request's deadline has passed")
        self.settimeout(remaining)  # type: ignore[attr-defined]

    def recv(self, *args: Any) -> Any:
        self._arm()
        return super().recv(*args)  # type: ignore[misc]

    def recv_into(self, *args: Any) -> Any:
        self._arm()
        return super().recv_into(*args)  # type: ignore[misc]

    def send(self, *args: Any) -> Any:
        self._arm()
        return super().send(*args)  # type: ignore[misc]

    def sendall(self, *args: Any) -> Any:
        self._arm()
        return super().sendall(*args)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineMixin, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):
    pass


# ------------------------------------------------------------------------------------------------------------
# urllib3 plumbing: connections that resolve once, check, and connect to the checked address


class _SafeConnectionMixin:
    """Replaces urllib3's ``_new_conn`` (which calls ``create_connection``) with check-then-connect."""

    # Provided by urllib3's HTTPConnection.
    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    _dns_host: str

    def __init__(self, *args: Any, address_policy: AddressPolicy, **kwargs: Any) -> None:
        self._address_policy = address_policy
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        check_name = self.host.strip("[]")
        # A literal IP is judged before resolution too, so that an IPv6 literal is refused (not reported as
        # unresolvable) on machines where getaddrinfo only returns IPv4.
        literal = _parse_ip(host)
        if literal is not None:
            self._address_policy.check(check_name, literal, self.port)
        family = socket.AF_UNSPEC if literal is not None else allowed_gai_family()
        try:
            infos = socket.getaddrinfo(host, self.port, family, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e  # type: ignore[arg-type]
        if not infos:
            raise NewConnectionError(self, "Failed to establish a new connection: no address found")  # type: ignore[arg-type]
        for _family, _type, _proto, _canonname, sockaddr in infos:
            self._address_policy.check(check_name, ipaddress.ip_address(sockaddr[0]), self.port)

        error: OSError | None = None
        for af, socktype, proto, _canonname, sockaddr in infos:
            sock = None
            try:
                sock = _DeadlineSocket(af, socktype, proto)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except OSError as e:
                error = e
                if sock is not None:
                    sock.close()
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error  # type: ignore[arg-type]


class _SafeHTTPConnection(_SafeConnectionMixin, HTTPConnection):
    pass


class _SafeHTTPSConnection(_SafeConnectionMixin, HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        # TLS replaced our socket with an SSLSocket: give it the same deadline (same layout, methods only).
        if type(self.sock) is ssl.SSLSocket:
            self.sock.__class__ = _DeadlineSSLSocket


class _SafeHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _SafeHTTPConnection


class _SafeHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _SafeHTTPSConnection


class _SafePoolManager(PoolManager):
    def __init__(self, *args: Any, address_policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address_policy = address_policy
        self.pool_classes_by_scheme = {"http": _SafeHTTPConnectionPool, "https": _SafeHTTPSConnectionPool}

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        # The policy cannot travel in connection_pool_kw: urllib3 builds its pool keys from those.
        pool.conn_kw["address_policy"] = self._address_policy
        return pool


class _SafeAdapter(HTTPAdapter):
    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        self._address_policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _SafePoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            address_policy=self._address_policy,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # A proxy would connect on our behalf, out of reach of the connect-time check.
        raise InvalidRequest("outbound requests never go through a proxy")


# ------------------------------------------------------------------------------------------------------------
# Requests and responses


@dataclass
class OutboundRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = float(DEFAULT_TIMEOUT_SECONDS)


@dataclass
class OutboundResponse:
    status_code: int
    headers: CaseInsensitiveDict[str]
    content: bytes
    url: str
    redirects: int
    elapsed_ms: int


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ALWAYS_DROPPED_CROSS_ORIGIN = ("Authorization", "Proxy-Authorization", "Cookie", "Host")
_BODY_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding")
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CHUNK_SIZE = 64 * 1024
_REDIRECT_BODY_DRAIN_BYTES = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SafeHttpClient:
    """Sends connector requests to addresses the policy allows, following redirects itself.

    One client holds one pooled ``requests.Session`` and may be shared by threads: the session is only used
    to send prepared requests, keeps no cookies (a cookie set for one tenant must never reach another) and
    ignores proxy and CA settings from the environment.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        user_agent: str = "Connectors/0.1",
        max_response_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        ca_bundle: str | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        """`pool_maxsize`: keep-alive connections kept per target host (as many as requests in flight to one
        host, or the surplus is closed after each request and opened anew for the next)."""
        self.policy = policy
        self.user_agent = user_agent
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self._verify: bool | str = ca_bundle or True
        session = requests.Session()
        session.trust_env = False
        session.proxies = {}
        session.cookies.set_policy(_NoCookies())
        adapter = _SafeAdapter(policy, pool_maxsize=pool_maxsize)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    def close(self) -> None:
        self._session.close()

    def send(
        self,
        request: OutboundRequest,
        *,
        sensitive_headers: Iterable[str] = (),
        is_secret: Callable[[str], bool] | None = None,
    ) -> OutboundResponse:
        """Send ``request``, following at most ``max_redirects`` redirects, and read the whole body.

        ``sensitive_headers`` names headers (besides Authorization, Proxy-Authorization, Cookie and Host) that
        are dropped when a redirect leaves the current scheme, host and port; once dropped they stay dropped.
        ``is_secret`` tells whether a text carries a secret: when a redirect leaves the origin, every header
        whose value does, and every query parameter of the target whose value does, is dropped as well, and a
        307/308 that would carry a secret-bearing body to the other origin is refused.
        301/302 turn POST into GET and 303 turns anything but HEAD into GET, without body; 307/308 keep both.
        The timeout is a total deadline for the whole call: connect, every send and read, redirects and body.

        Raises a subclass of HttpError; ``transient`` on it says whether a retry may succeed.
        """
        if not isinstance(request.timeout, int | float) or not request.timeout > 0:
            raise InvalidRequest("the timeout must be a positive number of seconds")
        method = request.method.upper() if isinstance(request.method, str) else ""
        if not _TOKEN_RE.match(method):
            raise InvalidRequest("the method is not a valid HTTP method")
        _check_headers(request.headers)
        _check_url(request.url)

        dropped_cross_origin = {h.lower() for h in (*_ALWAYS_DROPPED_CROSS_ORIGIN, *sensitive_headers)}
        headers = CaseInsensitiveDict(requests.utils.default_headers())
        headers["User-Agent"] = self.user_agent
        headers.update(request.headers)
        started = time.monotonic()
        deadline = started + request.timeout
        token = _deadline.set(deadline)
        try:
            return self._follow(request, method, headers, dropped_cross_origin, is_secret, started, deadline)
        finally:
            _deadline.reset(token)

    def _follow(
        self,
        request: OutboundRequest,
        method: str,
        headers: CaseInsensitiveDict[str],
        dropped_cross_origin: set[str],
        is_secret: Callable[[str], bool] | None,
        started: float,
        deadline: float,
    ) -> OutboundResponse:
        url, body, params = request.url, request.body, request.params
        redirects = 0
        while True:
            response = self._send_once(method, url, headers, params, body, deadline)
            location = _redirect_target(response)
            if location is None:
                content = self._read_body(response, url, deadline)
                return OutboundResponse(
                    status_code=response.status_code,
                    headers=response.headers,
                    content=content,
                    url=response.url,
                    redirects=redirects,
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                )
            _discard_body(response)
            if redirects >= self.max_redirects:
                raise TooManyRedirects(f"{_safe_url(url)} redirected more than {self.max_redirects} times (the limit)")
            redirects += 1
            next_url = urljoin(response.url, location)
            _check_url(next_url, redirected_from=url)
            if (response.status_code == 303 and method != "HEAD") or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
                for name in _BODY_HEADERS:
                    headers.pop(name, None)
            if _origin(next_url) != _origin(url):
                for name in list(headers):
                    if name.lower() in dropped_cross_origin or (is_secret is not None and is_secret(headers[name])):
                        del headers[name]
                if is_secret is not None:
                    next_url = _without_secret_params(next_url, is_secret)
                    if body is not None and is_secret(body.decode("utf-8", errors="replace")):
                        raise InvalidRequest(
                            f"{_safe_url(url)} redirected to another origin ({_safe_url(next_url)}) with the request "
                            "body, which carries a credential: not followed"
                        )
            # The query of the redirect target is the server's; the caller's params were for the first URL.
            url, params = next_url, {}

    def _send_once(
        self,
        method: str,
        url: str,
        headers: CaseInsensitiveDict[str],
        params: dict[str, str],
        body: bytes | None,
        deadline: float,
    ) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout(f"timed out waiting for the response from {_safe_url(url)}")
        try:
            prepared = requests.Request(
                method=method, url=url, headers=dict(headers), params=params, data=body
            ).prepare()
            return self._session.send(
                prepared,
                stream=True,
                allow_redirects=False,
                timeout=(remaining, remaining),
                verify=self._verify,
                proxies={},
            )
        except HttpError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, UnicodeError) as exc:
            # ``from None``: the wrapped exceptions quote URLs with their query and header values.
            raise _translate(exc, url) from None

    def _read_body(self, response: requests.Response, url: str, deadline: float) -> bytes:
        limit = self.max_response_bytes
        try:
            declared = int(response.headers.get("Content-Length", ""))
        except ValueError:
            declared = None
        try:
            if declared is not None and declared > limit:
                raise ResponseTooLarge(
                    f"the response from {_safe_url(url)} announces {declared} bytes, over the {limit}-byte limit"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=_CHUNK_SIZE):
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(f"the response from {_safe_url(url)} is larger than the {limit}-byte limit")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise RequestTimeout(f"timed out reading the response from {_safe_url(url)}")
            return b"".join(chunks)
        except HttpError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc, url) from None
        finally:
            response.close()


class _NoCookies(DefaultCookiePolicy):
    """Refuses every cookie, so the shared session never carries one tenant's cookies to another."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


# ------------------------------------------------------------------------------------------------------------
# Helpers


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _check_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN_RE.match(name):
            raise InvalidRequest("a header name is not a valid HTTP token (it may contain CR or LF)")
        if not isinstance(value, str):
            raise InvalidRequest(f"the value of header {name} is not a string")
        if any(ch in value for ch in "\r\n\0"):
            raise InvalidRequest(f"the value of header {name} contains CR, LF or NUL")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidRequest(f"the value of header {name} has characters outside Latin-1") from None


def _parse(url: str) -> Url:
    """Parse ``url`` exactly as requests and urllib3 will when they connect (never with urllib.parse).

    urllib.parse and urllib3 disagree on URLs such as ``http://a.test\\@b.test/``; deciding origins or
    schemes with a different parser than the one that picks the host would open a gap.
    """
    return parse_url(url)


def _check_url(url: str, *, redirected_from: str | None = None) -> None:
    where = f" (redirect from {_safe_url(redirected_from)})" if redirected_from else ""
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"the URL is empty{where}")
    try:
        parts = _parse(url)
    except ValueError:
        raise InvalidRequest(f"the URL is malformed{where}") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme!r}" if scheme else "none"
        raise InvalidRequest(f"only http and https URLs may be called, the scheme is {shown}{where}")
    if not parts.host:
        raise InvalidRequest(f"the URL has no host{where}")


def _safe_url(url: str) -> str:
    """``scheme://host:port/path`` of ``url``: no user info, query or fragment, which may carry secrets."""
    try:
        parts = _parse(url)
    except ValueError:
        return "<malformed URL>"
    scheme = (parts.scheme or "").lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{parts.host or ''}{f':{port}' if port else ''}{parts.path or '/'}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = _parse(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower().rstrip("."), parts.port or _DEFAULT_PORTS.get(scheme)


def _without_secret_params(url: str, is_secret: Callable[[str], bool]) -> str:
    """``url`` without the query parameters (and user info) whose text carries a secret."""
    parts = _parse(url)
    query = parts.query
    if query:
        kept = [pair for pair in query.split("&") if not is_secret(pair) and not is_secret(unquote_plus(pair))]
        query = "&".join(kept) or None
    auth = None if parts.auth and is_secret(unquote_plus(parts.auth)) else parts.auth
    if (query, auth) == (parts.query, parts.auth):
        return url
    return parts._replace(query=query, auth=auth).url


def _redirect_target(response: requests.Response) -> str | None:
    if response.status_code not in _REDIRECT_STATUSES or "Location" not in response.headers:
        return None
    raw = response.headers["Location"]
    # As in requests: servers send UTF-8 that http.client decoded as Latin-1.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _discard_body(response: requests.Response) -> None:
    """Read a small redirect body so the connection returns to the pool; close it on anything larger."""
    try:
        read = 0
        for chunk in response.raw.stream(_CHUNK_SIZE, decode_content=False):
            read += len(chunk)
            if read > _REDIRECT_BODY_DRAIN_BYTES:
                response.close()
                return
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        response.close()  # the redirect is still followed, on a new connection
        return
    response.raw.release_conn()


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, exceptions in args, MaxRetryError.reason."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend((current.__cause__, current.__context__))
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)


def _translate(exc: BaseException, url: str) -> HttpError:
    """Map a requests/urllib3/socket error to an HttpError whose message is free of secrets."""
    chain = list(_exception_chain(exc))
    target = _safe_url(url)
    for e in chain:
        if isinstance(e, HttpError):
            return e
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for historical reasons: it is not a timeout.
    timeouts = [
        e
        for e in chain
        if isinstance(e, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError)
        and not isinstance(e, NewConnectionError)
    ]
    if any(isinstance(e, requests.exceptions.ConnectTimeout | ConnectTimeoutError) for e in timeouts):
        return RequestTimeout(f"timed out connecting to {target}")
    if timeouts:
        return RequestTimeout(f"timed out waiting for the response from {target}")
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = f": {e.verify_message}" if e.verify_message else ""
            return ConnectionFailed(f"TLS certificate verification failed for {target}{detail}", transient=False)
    if any(
        isinstance(
            e,
            requests.exceptions.InvalidURL
            | requests.exceptions.InvalidSchema
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidHeader
            | urllib3.exceptions.LocationValueError
            | UnicodeError,
        )
        for e in chain
    ):
        return InvalidRequest(f"the request to {target} is invalid (URL or header)")
    if any(isinstance(e, requests.exceptions.ContentDecodingError) for e in chain):
        return HttpError(f"the response body from {target} could not be decoded", transient=False)
    if any(isinstance(e, NameResolutionError | socket.gaierror) for e in chain):
        return ConnectionFailed(f"could not resolve the host of {target}")
    if any(isinstance(e, ssl.SSLError | requests.exceptions.SSLError) for e in chain):
        return ConnectionFailed(f"the TLS handshake with {target} failed")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return ConnectionFailed(f"connection to {target} refused")
        if isinstance(e, ConnectionResetError):
            return ConnectionFailed(f"connection to {target} reset by the server")
    if any(isinstance(e, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError) for e in chain):
        return ConnectionFailed(f"the connection to {target} broke before the response was complete")
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return ConnectionFailed(f"connection to {target} failed: {e.strerror.lower()}")
    return ConnectionFailed(f"connection to {target} failed ({type(exc).__name__})")
