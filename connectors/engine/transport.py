"""The transport of outbound HTTP: keep-alive connections (``http.client``) that resolve once, check every
address against the policy and connect to a checked one, and sockets that keep the request's total deadline.

The check sits inside the connection (``_SafeConnectionMixin.connect``), below URL parsing: no second DNS
lookup between "check" and "connect", so DNS rebinding has no window, and every spelling of an address is
judged by what it resolves to. HTTPS pins only the TCP socket; TLS keeps the URL's host name for SNI and
certificate checks. The deadline of the request being sent by this thread lives in ``request_deadline``:
sockets re-arm their timeout to what is left of it before every send and receive.

Why ``http.client`` and a pool of its own rather than urllib3's pools: a step's request to a fast API cost
about twice the CPU through urllib3's pool manager, its connection and response wrappers (URL parsed three
times, header dictionaries rebuilt, a response object around ``http.client``'s), and a connector run is
mostly such requests (docs/performance.md, eighteenth pass). ``http.client`` still writes the request and
reads the status line, headers, chunks and lengths. Pure Python.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import select
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.connection import allowed_gai_family

from connectors.engine.addresses import AddressPolicy, parse_ip
from connectors.engine.http_errors import ConnectTimeout

# Target hosts whose connections a client keeps (the least recently used host's are closed beyond that).
HOSTS_POOLED = 10

# The total deadline of the request being sent by this thread (a time.monotonic() value), or None.
request_deadline: ContextVar[float | None] = ContextVar("outbound_request_deadline", default=None)

# Requests that may be sent again when a kept-alive connection turns out closed: the idempotent methods a step can
# use (RFC 9110, 9.2.2) and requests carrying an idempotency key (a step's POST and PATCH do by default).
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_IDEMPOTENCY_HEADERS = ("idempotency-key", "x-idempotency-key")


class _DeadlineMixin:
    """Before every send and receive, the socket's timeout becomes what is left of the request's deadline."""

    def _arm(self) -> None:
        deadline = request_deadline.get()
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


def _connect_checked(host: str, port: int, policy: AddressPolicy) -> socket.socket:
    """A socket connected to an address of ``host`` that ``policy`` allows, having refused the host if any of
    its addresses is refused; within what is left of the request's deadline.

    ``host`` is the URL's host (brackets and a trailing dot kept off by the caller, for the policy's names);
    it is resolved exactly once."""
    literal = parse_ip(host)
    # A literal IP is judged before resolution too, so that an IPv6 literal is refused (not reported as
    # unresolvable) on machines where getaddrinfo only returns IPv4.
    if literal is not None:
        policy.check(host, literal, port)
    family = socket.AF_UNSPEC if literal is not None else allowed_gai_family()
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no address found")
    for _family, _type, _proto, _canonname, sockaddr in infos:
        policy.check(host, ipaddress.ip_address(sockaddr[0]), port)

    error: OSError | None = None
    for af, socktype, proto, _canonname, sockaddr in infos:
        sock = None
        try:
            sock = _DeadlineSocket(af, socktype, proto)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(_remaining())
            sock.connect(sockaddr)
        except OSError as e:
            error = e
            if sock is not None:
                sock.close()
            continue
        return sock
    if isinstance(error, TimeoutError):
        raise ConnectTimeout(f"connecting to {host}:{port} timed out") from error
    assert error is not None
    raise error


def _remaining() -> float | None:
    deadline = request_deadline.get()
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConnectTimeout("the request's deadline has passed")
    return remaining


class _SafeConnectionMixin:
    """Replaces ``http.client``'s ``connect`` (which calls ``create_connection``) with check-then-connect."""

    host: str
    port: int
    sock: socket.socket | None

    def __init__(self, host: str, port: int, *, policy: AddressPolicy, **kwargs: Any) -> None:
        self._policy = policy
        super().__init__(host, port, **kwargs)  # type: ignore[call-arg]

    def _tcp(self) -> socket.socket:
        sock = _connect_checked(self.host, self.port, self._policy)
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def connect(self) -> None:
        self.sock = self._tcp()

    def is_dropped(self) -> bool:
        """The idle connection was closed by the server (or has unexpected bytes waiting): not reusable."""
        if self.sock is None:
            return True
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))


class _SafeHTTPConnection(_SafeConnectionMixin, http.client.HTTPConnection):
    pass


class _SafeHTTPSConnection(_SafeConnectionMixin, http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = self._tcp()
        try:
            sock.settimeout(_remaining())
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except TimeoutError as e:
            sock.close()
            raise ConnectTimeout(f"the TLS handshake with {self.host}:{self.port} timed out") from e
        except BaseException:
            sock.close()
            raise


Connection = _SafeHTTPConnection | _SafeHTTPSConnection


class Reply:
    """A response whose status line and headers are read, its body not yet, and the way its connection goes
    back: ``done(reusable=True)`` once the body was read to its end pools the connection, anything else
    closes it."""

    def __init__(self, response: http.client.HTTPResponse, on_done: Callable[[bool], None]) -> None:
        self.response = response
        self._on_done = on_done

    def done(self, *, reusable: bool) -> None:
        on_done, self._on_done = self._on_done, _ignore
        on_done(reusable and not self.response.will_close)


def _ignore(_reusable: bool) -> None:
    return None


class ConnectionPools:
    """Idle keep-alive connections by (scheme, host, port), at most ``maxsize`` per target and
    ``HOSTS_POOLED`` targets (the least recently used target's are closed beyond that). More requests in
    flight to one target than ``maxsize`` open more connections; the surplus is closed after its request.
    Safe to share between threads: a connection is used by one request at a time."""

    def __init__(self, policy: AddressPolicy, *, maxsize: int, ca_bundle: str | None) -> None:
        self._policy = policy
        self._maxsize = maxsize
        self._idle: OrderedDict[tuple[str, str, int], list[Connection]] = OrderedDict()
        self._lock = threading.Lock()
        self._tls = _tls_context(ca_bundle)

    def send(
        self, scheme: str, host: str, port: int, method: str, target: str, headers: Any, body: bytes | None
    ) -> Reply:
        """Sends the request on an idle connection to (scheme, host, port) or a new one, and reads the
        response's status line and headers.

        A server may close an idle keep-alive connection just as a request goes out on it, after the check at
        checkout: the request then meets a reset or a close with no answer. Such a request on a reused
        connection is sent once more on a new one, within the same deadline, when it is safe to repeat
        (``_replayable``); otherwise, and on a new connection, the error is the caller's."""
        key = (scheme, host, port)
        connection = self._take(key)
        if connection is None:
            return self._exchange(key, self._new(key), method, target, headers, body)
        try:
            return self._exchange(key, connection, method, target, headers, body)
        except (ConnectionResetError, BrokenPipeError):  # http.client.RemoteDisconnected included
            if not _replayable(method, headers):
                raise
        return self._exchange(key, self._new(key), method, target, headers, body)

    def clear(self) -> None:
        with self._lock:
            pools, self._idle = list(self._idle.values()), OrderedDict()
        for connections in pools:
            for connection in connections:
                connection.close()

    def _exchange(
        self,
        key: tuple[str, str, int],
        connection: Connection,
        method: str,
        target: str,
        headers: Any,
        body: bytes | None,
    ) -> Reply:
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return Reply(response, lambda reusable: self._give_back(key, connection, reusable))

    def _take(self, key: tuple[str, str, int]) -> Connection | None:
        """An idle connection to ``key`` that the server has not closed, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None or not connection.is_dropped():
                return connection
            connection.close()

    def _new(self, key: tuple[str, str, int]) -> Connection:
        scheme, host, port = key
        if scheme == "https":
            return _SafeHTTPSConnection(host, port, policy=self._policy, context=self._tls)
        return _SafeHTTPConnection(host, port, policy=self._policy)

    def _give_back(self, key: tuple[str, str, int], connection: Connection, reusable: bool) -> None:
        evicted: list[Connection] = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            kept = reusable and len(idle) < self._maxsize
            if kept:
                idle.append(connection)
            while len(self._idle) > HOSTS_POOLED:
                _key, connections = self._idle.popitem(last=False)
                evicted.extend(connections)
        if not kept:
            connection.close()
        for stale in evicted:
            stale.close()


def _replayable(method: str, headers: Any) -> bool:
    """Whether sending the request twice is safe: its method is idempotent or it carries an idempotency key."""
    return method.upper() in _IDEMPOTENT_METHODS or any(name.lower() in _IDEMPOTENCY_HEADERS for name in headers)


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificates verified against ``ca_bundle`` (a file or a directory) or, without one, certifi's bundle
    (as requests verifies), host names checked, TLS 1.2 at least; the sockets keep the deadline."""
    ca = ca_bundle or DEFAULT_CA_BUNDLE_PATH
    context = ssl.create_default_context(capath=ca) if os.path.isdir(ca) else ssl.create_default_context(cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = _DeadlineSSLSocket
    return context
