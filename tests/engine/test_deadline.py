"""A request's timeout is a total deadline: connect, headers and every read of the body, over redirects.

Slow-drip servers (one byte every 50 ms) would stretch a per-read timeout without end; here the call stops at
its deadline. What is asserted is behaviour (a timeout error, and that the server could not send the whole
body), never a duration.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from connectors.engine.http import AddressPolicy, OutboundRequest, RequestTimeout, SafeHttpClient
from connectors.engine.redaction import Redactor
from connectors.engine.runner import Runner
from tests.factories import normalized_step
from tests.local_server import TEST_CA_BUNDLE, Reply

BODY = b"x" * 400  # 20 s at one byte per 50 ms


@pytest.fixture
def client() -> SafeHttpClient:
    return SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"), ca_bundle=TEST_CA_BUNDLE)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, body=BODY, drip=0.05),
        Reply(200, body=BODY, drip=0.05, content_length=False),
        Reply(200, body=BODY, drip=0.05, drip_headers=True),
        Reply(200, headers={"Content-Type": "application/json"}, body=BODY, drip=0.05),
    ],
    ids=["content-length", "no-content-length", "headers", "json"],
)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_slow_drip_stops_at_the_deadline(client, local_server, local_tls_server, reply, tls):
    server = local_tls_server if tls else local_server
    server.route("/drip", reply)
    url = f"{server.url.replace('127.0.0.1', 'localhost') if tls else server.url}/drip"
    if tls:
        client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1,localhost"), ca_bundle=TEST_CA_BUNDLE)

    with pytest.raises(RequestTimeout) as caught:
        client.send(OutboundRequest("GET", url, timeout=0.5))

    assert "timed out" in caught.value.message
    assert server.dripped < len(BODY)


def test_the_deadline_covers_redirects_too(client, local_server):
    local_server.route("/start", Reply(302, headers={"Location": "/drip"}))
    local_server.route("/drip", Reply(200, body=BODY, drip=0.05))

    with pytest.raises(RequestTimeout):
        client.send(OutboundRequest("GET", f"{local_server.url}/start", timeout=0.5))

    assert [r.path for r in local_server.requests] == ["/start", "/drip"]
    assert local_server.dripped < len(BODY)


def test_a_pooled_connection_works_after_a_deadline_on_another_request(client, local_server):
    local_server.route("/drip", Reply(200, body=BODY, drip=0.05))
    local_server.route("/fast", Reply(200, body=b"fast"))

    with pytest.raises(RequestTimeout):
        client.send(OutboundRequest("GET", f"{local_server.url}/drip", timeout=0.3))
    response = client.send(OutboundRequest("GET", f"{local_server.url}/fast", timeout=5))

    assert response.content == b"fast"


@pytest.mark.parametrize("content_length", [True, False])
def test_a_step_against_a_slow_drip_fails_with_a_timeout(local_server, content_length):
    local_server.route("/drip", Reply(200, body=BODY, drip=0.05, content_length=content_length))
    runner = Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")))
    step = normalized_step(
        {"name": "slow", "url": f"{local_server.url}/drip", "timeout_seconds": 1, "retry": {"max_attempts": 1}}
    )

    record, retry = runner._run_step(step, 0, {"input": {}, "steps": {}}, Redactor(), None, None)

    assert retry is None
    assert record.status == "failed"
    assert record.error == f"timed out waiting for the response from {local_server.url}/drip"
    assert local_server.dripped < len(BODY)


@pytest.fixture
def silent_peer() -> Iterator[tuple[str, int]]:
    """A TCP listener on 127.0.0.1 that accepts connections and never reads nor writes a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_an_upload_the_server_never_reads_stops_at_the_deadline(client, silent_peer):
    host, port = silent_peer
    body = b"x" * (64 * 1024 * 1024)  # far beyond what the two sockets' buffers hold

    with pytest.raises(RequestTimeout) as caught:
        client.send(OutboundRequest("POST", f"http://{host}:{port}/upload", body=body, timeout=0.5))

    assert "timed out" in caught.value.message


def test_a_response_that_never_comes_stops_at_the_deadline(client, silent_peer):
    host, port = silent_peer

    with pytest.raises(RequestTimeout) as caught:
        client.send(OutboundRequest("GET", f"http://{host}:{port}/silent", timeout=0.3))

    assert caught.value.message == f"timed out waiting for the response from http://{host}:{port}/silent"
