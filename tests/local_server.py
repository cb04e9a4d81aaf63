"""A small threaded HTTP(S) server on 127.0.0.1 that records what it receives and answers from a script.

Use the ``local_server`` fixture (plain HTTP) or ``local_tls_server`` (HTTPS with a certificate for
``localhost``/127.0.0.1/::1, trusted by ``TEST_CA_BUNDLE``), or start ``LocalServer`` yourself. Script
answers per path with ``server.route(path, Reply(...))``; a list of replies is served in order, the last one
repeating. Unrouted paths answer 200 ``ok``.

    def test_something(local_server):
        local_server.route("/old", Reply(302, headers={"Location": "/new"}))
        ...
        assert local_server.connections == 1
        assert [r.path for r in local_server.requests] == ["/old", "/new"]

Import the fixtures into a test module (``from tests.local_server import local_server``) or list the module in
``pytest_plugins``.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_CERTS = Path(__import__("pytest_httpbin").__file__).parent / "certs"
TEST_CA_BUNDLE = str(_CERTS / "client.pem")
_SERVER_CERT = str(_CERTS / "server.pem")
_SERVER_KEY = str(_CERTS / "server.key")


@dataclass
class Reply:
    """One scripted response.

    ``delay`` waits before the status line; ``body_size`` streams that many bytes of ``b"x"`` (instead of
    ``body``) in 64 KiB chunks; ``content_length=False`` omits Content-Length and ends the body by closing.
    ``drip`` sends the body one byte at a time, ``drip`` seconds apart (``drip_headers`` the status line and
    headers too); ``LocalServer.dripped`` counts the bytes that went out that way.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    body_size: int | None = None
    content_length: bool = True
    drip: float = 0.0
    drip_headers: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


Responder = Reply | list[Reply] | Callable[[RecordedRequest], Reply]


class LocalServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that counts TCP connections and records every request."""

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        self.requests: list[RecordedRequest] = []
        self.connections = 0
        self.dripped = 0
        self.server_names: list[str | None] = []
        self._routes: dict[str, Responder] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, owner=self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._ssl_context: ssl.SSLContext | None = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(_SERVER_CERT, _SERVER_KEY)
            context.sni_callback = self._record_server_name
            self._ssl_context = context

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def hits(self) -> int:
        """Number of HTTP requests received."""
        return len(self.requests)

    def route(self, path: str, responder: Responder) -> None:
        with self._lock:
            self._routes[path] = list(responder) if isinstance(responder, list) else responder

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Called from handler threads.

    def _record_server_name(self, sslobj: Any, server_name: str | None, context: Any) -> None:
        with self._lock:
            self.server_names.append(server_name)

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _drip(self, wfile: Any, data: bytes, interval: float) -> None:
        """Writes `data` one byte every `interval` seconds until done, the client leaves or the server stops."""
        for index in range(len(data)):
            if self._stopping.wait(interval):
                return
            try:
                wfile.write(data[index : index + 1])
                wfile.flush()
            except OSError:
                return
            with self._lock:
                self.dripped += 1

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            responder = self._routes.get(request.path.split("?", 1)[0])
            if isinstance(responder, list):
                reply = responder.pop(0) if len(responder) > 1 else responder[0]
                return reply
        if responder is None:
            return Reply()
        if isinstance(responder, Reply):
            return responder
        return responder(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, *, owner: LocalServer) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        self.owner._count_connection()
        context = self.owner._ssl_context
        if context is not None:
            # The handshake runs in the handler thread (see _Handler.setup), not in the accept loop.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response (size limits, timeouts) are expected in these tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(5)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(method=self.command, path=self.path, headers=dict(self.headers.items()), body=body)
        owner = self.server.owner
        reply = owner._reply_for(request)
        if reply.delay and owner._stopping.wait(reply.delay):
            return
        if reply.drip_headers:
            head = f"HTTP/1.1 {reply.status} OK\r\nContent-Length: {len(reply.body)}\r\nX-Slow: yes\r\n\r\n"
            owner._drip(self.wfile, head.encode() + reply.body, reply.drip)
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        size = reply.body_size if reply.body_size is not None else len(reply.body)
        if reply.content_length:
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.drip:
            self.wfile.flush()
            owner._drip(self.wfile, reply.body, reply.drip)
            self.close_connection = True
            return
        if reply.body_size is None:
            self.wfile.write(reply.body)
            return
        chunk = b"x" * 65536
        remaining = reply.body_size
        while remaining > 0 and not owner._stopping.is_set():
            self.wfile.write(chunk[:remaining])
            remaining -= len(chunk)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def local_tls_server() -> Iterator[LocalServer]:
    with LocalServer(tls=True) as server:
        yield server
