"""The transport of outbound HTTP: urllib3 connection pools whose connections resolve once, check every address
against the policy and connect to a checked one, and sockets that keep the request's total deadline.

The check sits inside the connection (``_SafeConnectionMixin._new_conn``), below URL parsing: no second DNS
lookup between "check" and "connect", so DNS rebinding has no window, and every spelling of an address is
judged by what it resolves to. HTTPS pins only the TCP socket; TLS keeps the URL's host name for SNI and
certificate checks. The deadline of the request being sent by this thread lives in ``request_deadline``:
sockets re-arm their timeout to what is left of it before every send and receive. Pure Python.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import sys
import time
from contextvars import ContextVar
from typing import Any

from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util.connection import allowed_gai_family

from connectors.engine.addresses import AddressPolicy, parse_ip

# Target hosts whose connections a client keeps (the least recently used host's pool is closed beyond that).
HOSTS_POOLED = 10

# The total deadline of the request being sent by this thread (a time.monotonic() value), or None.
request_deadline: ContextVar[float | None] = ContextVar("outbound_request_deadline", default=None)


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
        literal = parse_ip(host)
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


def safe_pool_manager(policy: AddressPolicy, *, maxsize: int, ca_bundle: str | None) -> PoolManager:
    """The connection pools of a client: every connection checked by ``policy``, TLS verified against
    ``ca_bundle`` (a file or a directory) or, without one, certifi's bundle, as requests verifies."""
    ca = ca_bundle or DEFAULT_CA_BUNDLE_PATH
    tls = {"ca_cert_dir": ca} if os.path.isdir(ca) else {"ca_certs": ca}
    return _SafePoolManager(
        num_pools=HOSTS_POOLED,
        maxsize=maxsize,
        block=False,
        address_policy=policy,
        cert_reqs="CERT_REQUIRED",
        **tls,
    )
