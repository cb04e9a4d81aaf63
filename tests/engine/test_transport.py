"""The transport under SafeHttpClient: keep-alive connections and what happens to them, and response bodies
as servers really frame and encode them (chunks, codings, repeated headers), against servers on 127.0.0.1.

Most cases use ``RawServer``, which answers each connection with scripted bytes: the threaded test server
cannot repeat a header, send broken chunks or close a kept-alive connection behind the client's back."""

from __future__ import annotations

import contextlib
import gzip
import re
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connectors.engine.http import (
    AddressPolicy,
    ConnectionFailed,
    HttpError,
    OutboundRequest,
    OutboundResponse,
    ResponseTooLarge,
    SafeHttpClient,
)
from tests.local_server import LocalServer, RecordedRequest, Reply

pytest_plugins = ["tests.local_server"]


class RawServer:
    """Accepts connections on 127.0.0.1; on each, reads requests (headers only) and answers each with the next
    scripted response, closing the connection after it when ``close_after_each`` is set; a scripted ``None``
    closes the connection instead of answering the request it read. ``wait_closed()`` returns once the server
    has closed one more connection."""

    def __init__(self, responses: list[bytes | None], *, close_after_each: bool = False) -> None:
        self.responses = list(responses)
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests = 0
        self._closed = threading.Semaphore(0)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(5)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes an accept() still waiting for a connection
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while self.responses:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                self._answer(conn)
            self._closed.release()

    def wait_closed(self) -> None:
        assert self._closed.acquire(timeout=5), "the server did not close the connection"

    def _answer(self, conn: socket.socket) -> None:
        buffered = b""
        while self.responses:
            while b"\r\n\r\n" not in buffered:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffered += data
            buffered = buffered.split(b"\r\n\r\n", 1)[1]
            self.requests += 1
            scripted = self.responses.pop(0)
            if scripted is None:
                return
            conn.sendall(scripted)
            if self.close_after_each:
                return


def response(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture
def client() -> Iterator[SafeHttpClient]:
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"))
    yield client
    client.close()


def get(client: SafeHttpClient, url: str) -> OutboundResponse:
    return client.send(OutboundRequest("GET", f"{url}/", timeout=5))


def fetch(client: SafeHttpClient, raw_response: bytes) -> OutboundResponse:
    """What the client makes of ``raw_response``, served once on a connection of its own."""
    with RawServer([raw_response], close_after_each=True) as server:
        return get(client, server.url)


# ------------------------------------------------------------------------------------------------------------
# Keep-alive connections


def test_a_connection_the_server_closed_while_idle_is_not_reused(client: SafeHttpClient) -> None:
    with RawServer([response(b"first"), response(b"second")], close_after_each=True) as server:
        assert get(client, server.url).content == b"first"
        server.wait_closed()  # closed while idle in the client's pool, not as the next request goes out
        assert get(client, server.url).content == b"second"

    assert (server.connections, server.requests) == (2, 2)


def test_a_get_whose_kept_alive_connection_closed_as_it_went_out_is_sent_again(client: SafeHttpClient) -> None:
    # The server closes the idle connection as the second request arrives on it: after the client's check.
    with RawServer([response(b"first"), None, response(b"second")]) as server:
        assert get(client, server.url).content == b"first"
        assert get(client, server.url).content == b"second"

    assert (server.connections, server.requests) == (2, 3)


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Idempotency-Key"])
def test_a_post_with_an_idempotency_key_is_sent_again_too(client: SafeHttpClient, header: str) -> None:
    keyed = OutboundRequest("POST", "", headers={header: "k-1"}, body=b"{}", timeout=5)
    with RawServer([response(b"first"), None, response(b"second")]) as server:
        get(client, server.url)
        assert client.send(replace(keyed, url=f"{server.url}/")).content == b"second"

    assert (server.connections, server.requests) == (2, 3)


def test_a_post_without_an_idempotency_key_is_not_sent_twice(client: SafeHttpClient) -> None:
    with RawServer([response(b"first"), None, response(b"never sent")]) as server:
        get(client, server.url)
        with pytest.raises(ConnectionFailed) as excinfo:
            client.send(OutboundRequest("POST", f"{server.url}/", body=b"{}", timeout=5))

    assert excinfo.value.transient is True
    assert (server.connections, server.requests) == (1, 2)


def test_a_new_connection_closed_without_an_answer_fails_at_once(client: SafeHttpClient) -> None:
    with RawServer([None, response(b"never sent")]) as server, pytest.raises(ConnectionFailed):
        get(client, server.url)

    assert (server.connections, server.requests) == (1, 1)


def test_a_request_is_sent_again_once_at_most(client: SafeHttpClient) -> None:
    with RawServer([response(b"first"), None, None, response(b"never sent")]) as server:
        get(client, server.url)
        with pytest.raises(ConnectionFailed):
            get(client, server.url)

    assert (server.connections, server.requests) == (2, 3)


def test_a_kept_alive_connection_carries_the_next_request(client: SafeHttpClient) -> None:
    with RawServer([response(b"first"), response(b"second")]) as server:
        get(client, server.url)
        get(client, server.url)

    assert (server.connections, server.requests) == (1, 2)


def test_connection_close_from_the_server_is_honoured(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/", Reply(headers={"Connection": "close"}))

    for _ in range(2):
        assert get(client, local_server.url).status_code == 200

    assert local_server.connections == 2


def test_a_connection_whose_body_was_not_read_to_its_end_is_not_reused(local_server: LocalServer) -> None:
    small = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"), max_response_bytes=10)
    local_server.route("/big", Reply(body_size=1000))

    with pytest.raises(ResponseTooLarge):
        small.send(OutboundRequest("GET", f"{local_server.url}/big", timeout=5))
    assert small.send(OutboundRequest("GET", f"{local_server.url}/", timeout=5)).content == b"ok"

    assert local_server.connections == 2


def test_connections_beyond_the_pool_size_are_closed_after_their_request(local_server: LocalServer) -> None:
    one = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"), pool_maxsize=1)
    both_arrived = threading.Barrier(2)

    def answer_once_both_are_in_flight(request: RecordedRequest) -> Reply:
        both_arrived.wait(5)
        return Reply()

    local_server.route("/together", answer_once_both_are_in_flight)

    def two_at_once() -> None:
        request = OutboundRequest("GET", f"{local_server.url}/together", timeout=10)
        threads = [threading.Thread(target=one.send, args=(request,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    two_at_once()
    two_at_once()
    one.close()

    # Each time two were in flight at once: the first time on two new connections, of which one was kept;
    # the second time on the kept one and one more new one.
    assert local_server.hits == 4
    assert local_server.connections == 3


# ------------------------------------------------------------------------------------------------------------
# Bodies


def test_a_chunked_body_is_read_whole(client: SafeHttpClient) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    with RawServer([chunked, response(b"next")]) as server:
        assert get(client, server.url).content == b"hello world"
        assert get(client, server.url).content == b"next"

    assert server.connections == 1


def test_a_broken_chunk_fails_as_a_broken_connection(client: SafeHttpClient) -> None:
    with pytest.raises(ConnectionFailed) as excinfo:
        fetch(client, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n")

    assert excinfo.value.transient is True


@pytest.mark.parametrize(
    "compressed",
    [zlib.compress(b"deflated " * 50), zlib.compress(b"deflated " * 50)[2:-4]],
    ids=["zlib-wrapped", "raw"],
)
def test_a_deflate_body_is_decoded_with_or_without_its_zlib_wrapper(client: SafeHttpClient, compressed: bytes) -> None:
    assert fetch(client, response(compressed, "Content-Encoding: deflate")).content == b"deflated " * 50


def test_concatenated_gzip_members_are_one_body(client: SafeHttpClient) -> None:
    two_members = gzip.compress(b"one ") + gzip.compress(b"two")

    assert fetch(client, response(two_members, "Content-Encoding: gzip")).content == b"one two"


def test_a_body_in_an_unknown_coding_is_kept_as_it_came(client: SafeHttpClient) -> None:
    assert fetch(client, response(b"\x00opaque", "Content-Encoding: snappy")).content == b"\x00opaque"


def test_a_corrupt_gzip_body_fails_without_a_retry(client: SafeHttpClient) -> None:
    with pytest.raises(HttpError) as excinfo:
        fetch(client, response(b"not gzip at all", "Content-Encoding: gzip"))

    assert re.fullmatch(r"the response body from http://127\.0\.0\.1:\d+/ could not be decoded", str(excinfo.value))
    assert excinfo.value.transient is False


def test_a_compressed_body_stops_expanding_at_the_limit(local_server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    small = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"), max_response_bytes=1000)
    local_server.route("/bomb", Reply(headers={"Content-Encoding": "gzip"}, body=bomb))

    with pytest.raises(ResponseTooLarge):
        small.send(OutboundRequest("GET", f"{local_server.url}/bomb", timeout=5))


def test_a_header_sent_twice_is_joined(client: SafeHttpClient) -> None:
    headers = fetch(client, response(b"ok", "Vary: Accept", "vary: Origin", "Link: <a>")).headers

    assert headers["Vary"] == "Accept, Origin"
    assert headers["link"] == "<a>"


def test_what_the_client_asks_for_is_what_it_decodes(client: SafeHttpClient, local_server: LocalServer) -> None:
    get(client, local_server.url)

    sent = local_server.requests[0]
    assert sent.header("Accept-Encoding") == "gzip, deflate"
    assert sent.header("Accept") == "*/*"
    assert sent.header("Connection") == "keep-alive"
