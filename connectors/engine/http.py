"""SSRF-safe outbound HTTP for connector steps.

Connector steps call URLs chosen by tenants, with tenants' credentials, from inside our network. Everything
here exists so that such a call can only reach globally routable addresses (plus the operator's explicit
allowlist, ``CONNECTORS_ALLOWED_PRIVATE_HOSTS``), whatever the URL, DNS or redirects say.

How the address check works:

* The check happens at connect time, inside the connection (``transport._SafeConnectionMixin.connect``).
  The host is resolved with ``socket.getaddrinfo`` exactly once per connection, every resolved address is
  checked, and the socket is connected to one of those checked addresses itself. There is no second lookup
  between "check" and "connect", so DNS rebinding has no window. Because the check sits below URL parsing,
  every spelling of an address that the OS resolver accepts (``2130706433``, ``0x7f000001``, ``0177.1``,
  ``127.1``, ``[::ffff:7f00:1]`` ...) is judged by the address it really resolves to.
* A name that resolves to several addresses is refused when ANY of them is refused. A name straddling public
  and private addresses is suspicious, and connecting only to the allowed ones would make the outcome depend
  on resolver ordering. The allowed addresses are then tried in resolver order.
* HTTPS: only the TCP socket is pinned to the checked IP. The connection wraps that socket with TLS using the
  connection's original host name, so SNI, certificate verification and the ``Host`` header all keep using
  the name from the URL.
* Redirects are followed here, not by ``http.client``, so every hop goes through the same checks, and credentials
  are dropped when a hop leaves the origin.

The timeout of a request is a total deadline (connect, TLS, sending, status line, headers and every read of
the body, over all redirects): the sockets of this client re-arm their timeout to what is left before every
send and receive (``_DeadlineSocket``), so a server that drips one byte per second cannot stretch a call
beyond it. Only DNS resolution is outside the deadline (``getaddrinfo`` cannot be interrupted).

The parts: ``http_errors`` (errors, secret-free URLs), ``addresses`` (the address policy), ``transport``
(connect-time checks, deadline sockets), ``responses`` (reading bodies and redirects), and this module, the
client that sends a request and follows its redirects. Its public names are importable from here.
Nothing in these modules imports Django: the caller passes the allowlist setting in.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlencode, urljoin

import requests
from requests.structures import CaseInsensitiveDict

from connectors.engine.addresses import AddressPolicy
from connectors.engine.http_errors import (
    DEFAULT_PORTS,
    BlockedDestination,
    ConnectionFailed,
    HttpError,
    InvalidRequest,
    RequestTimeout,
    ResponseTooLarge,
    TooManyRedirects,
    parse,
    safe_url,
    translate,
)
from connectors.engine.responses import ACCEPTED_ENCODINGS, discard_body, headers_of, read_body, redirect_target
from connectors.engine.spec import DEFAULT_TIMEOUT_SECONDS
from connectors.engine.transport import ConnectionPools, Reply, request_deadline

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


_ALWAYS_DROPPED_CROSS_ORIGIN = ("Authorization", "Proxy-Authorization", "Cookie", "Host")
_BODY_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding")
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class SafeHttpClient:
    """Sends connector requests to addresses the policy allows, following redirects itself.

    One client holds one set of keep-alive connections (``transport.ConnectionPools``) and may be shared by
    threads. Requests are prepared by requests (URL quoting, parameters, body, credentials in the URL) and
    sent by ``http.client``; nothing keeps cookies (a cookie set for one tenant must never reach another)
    and nothing reads proxy or CA settings from the environment.
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
        self._pools = ConnectionPools(policy, maxsize=pool_maxsize, ca_bundle=ca_bundle)

    def close(self) -> None:
        self._pools.clear()

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
        headers = CaseInsensitiveDict(
            {
                "User-Agent": self.user_agent,
                "Accept-Encoding": ACCEPTED_ENCODINGS,
                "Accept": "*/*",
                "Connection": "keep-alive",
            }
        )
        headers.update(request.headers)
        started = time.monotonic()
        deadline = started + request.timeout
        token = request_deadline.set(deadline)
        try:
            return self._follow(request, method, headers, dropped_cross_origin, is_secret, started, deadline)
        finally:
            request_deadline.reset(token)

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
            reply, sent_url = self._send_once(method, url, headers, params, body, deadline)
            location = redirect_target(reply)
            if location is None:
                content = read_body(reply, url, deadline, self.max_response_bytes)
                return OutboundResponse(
                    status_code=reply.response.status,
                    headers=headers_of(reply),
                    content=content,
                    url=sent_url,
                    redirects=redirects,
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                )
            discard_body(reply)
            if redirects >= self.max_redirects:
                raise TooManyRedirects(f"{safe_url(url)} redirected more than {self.max_redirects} times (the limit)")
            redirects += 1
            next_url = urljoin(sent_url, location)
            _check_url(next_url, redirected_from=url)
            status = reply.response.status
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
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
                            f"{safe_url(url)} redirected to another origin ({safe_url(next_url)}) with the request "
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
    ) -> tuple[Reply, str]:
        """The response, its body not read yet, and the URL as sent (quoted, with the parameters)."""
        if deadline - time.monotonic() <= 0:
            raise RequestTimeout(f"timed out waiting for the response from {safe_url(url)}")
        try:
            prepared = _prepared(method, url, headers, params, body)
            return self._open(prepared), str(prepared.url)
        except HttpError:
            raise
        except (requests.RequestException, http.client.HTTPException, ValueError, OSError) as exc:
            # ``from None``: the wrapped exceptions quote URLs with their query and header values.
            raise translate(exc, url) from None

    def _open(self, prepared: requests.PreparedRequest) -> Reply:
        """Send ``prepared``: no retry, no redirect, the body left to read."""
        parts = parse(str(prepared.url))
        scheme = (parts.scheme or "").lower()
        # The URL's host without brackets (IPv6) or a trailing dot: what is resolved, checked and sent as Host.
        host = (parts.host or "").strip("[]").rstrip(".")
        port = parts.port or DEFAULT_PORTS[scheme]
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        return self._pools.send(scheme, host, port, str(prepared.method), prepared.path_url, prepared.headers, body)


def _prepared(
    method: str, url: str, headers: CaseInsensitiveDict[str], params: dict[str, str], body: bytes | None
) -> requests.PreparedRequest:
    """The request as requests prepares it (method, URL with the parameters, headers, body and its length,
    credentials in the URL), without its cookie jar and hooks, which this client never uses."""
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    prepared.prepare_url(url, _encoded(params))
    prepared.prepare_headers(headers)
    prepared.prepare_body(body, None)
    prepared.prepare_auth(None, url)
    return prepared


def _encoded(params: dict[str, str]) -> str:
    """``params`` encoded as requests encodes a dict (UTF-8, ``None`` left out), without its type checks
    (45 µs per request: a runtime protocol check it makes even on an empty dict)."""
    return urlencode([(k.encode(), _utf8(v)) for k, v in params.items() if v is not None], doseq=True)


def _utf8(value: object) -> object:
    return value.encode() if isinstance(value, str) else value


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


def _check_url(url: str, *, redirected_from: str | None = None) -> None:
    where = f" (redirect from {safe_url(redirected_from)})" if redirected_from else ""
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"the URL is empty{where}")
    try:
        parts = parse(url)
    except ValueError:
        raise InvalidRequest(f"the URL is malformed{where}") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme!r}" if scheme else "none"
        raise InvalidRequest(f"only http and https URLs may be called, the scheme is {shown}{where}")
    if not parts.host:
        raise InvalidRequest(f"the URL has no host{where}")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = parse(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower().rstrip("."), parts.port or DEFAULT_PORTS.get(scheme)


def _without_secret_params(url: str, is_secret: Callable[[str], bool]) -> str:
    """``url`` without the query parameters (and user info) whose text carries a secret."""
    parts = parse(url)
    query = parts.query
    if query:
        kept = [pair for pair in query.split("&") if not is_secret(pair) and not is_secret(unquote_plus(pair))]
        query = "&".join(kept) or None
    auth = None if parts.auth and is_secret(unquote_plus(parts.auth)) else parts.auth
    if (query, auth) == (parts.query, parts.auth):
        return url
    return parts._replace(query=query, auth=auth).url
