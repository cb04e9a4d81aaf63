"""Behaviour of connectors.engine.http.SafeHttpClient against real local servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from typing import Any

import pytest

from connectors.engine.http import (
    AddressPolicy,
    BlockedDestination,
    ConnectionFailed,
    HttpError,
    InvalidRequest,
    OutboundRequest,
    OutboundResponse,
    RequestTimeout,
    ResponseTooLarge,
    SafeHttpClient,
    TooManyRedirects,
)
from tests.local_server import LocalServer, RecordedRequest, Reply

pytest_plugins = ["tests.local_server"]

LOCAL = AddressPolicy.from_setting("127.0.0.1")


@pytest.fixture
def client() -> SafeHttpClient:
    return SafeHttpClient(LOCAL)


def send(client: SafeHttpClient, method: str, url: str, **kwargs: Any) -> OutboundResponse:
    sensitive = kwargs.pop("sensitive_headers", ())
    kwargs.setdefault("timeout", 5)
    return client.send(OutboundRequest(method=method, url=url, **kwargs), sensitive_headers=sensitive)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("error_class", "transient"),
    [
        (BlockedDestination, False),
        (InvalidRequest, False),
        (TooManyRedirects, False),
        (ResponseTooLarge, False),
        (ConnectionFailed, True),
        (RequestTimeout, True),
    ],
)
def test_error_classes_say_whether_a_retry_can_help(error_class: type[HttpError], transient: bool) -> None:
    error = error_class("boom")

    assert isinstance(error, HttpError)
    assert error.transient is transient
    assert error.message == "boom"
    assert str(error) == "boom"


# ------------------------------------------------------------------------------------------------------------
# Plain requests


def test_get_returns_status_headers_body_and_final_url(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/items", Reply(201, headers={"X-Mode": "test"}, body=b'{"id": 7}'))

    response = send(client, "GET", f"{local_server.url}/items")

    assert response.status_code == 201
    assert response.headers["x-mode"] == "test"
    assert response.content == b'{"id": 7}'
    assert response.url == f"{local_server.url}/items"
    assert response.redirects == 0
    assert isinstance(response.elapsed_ms, int)


def test_default_user_agent_is_sent(client: SafeHttpClient, local_server: LocalServer) -> None:
    send(client, "GET", f"{local_server.url}/")

    assert local_server.requests[0].header("User-Agent") == "Connectors/0.1"


def test_request_user_agent_overrides_the_default(local_server: LocalServer) -> None:
    client = SafeHttpClient(LOCAL, user_agent="Acme/2")

    send(client, "GET", f"{local_server.url}/")
    send(client, "GET", f"{local_server.url}/", headers={"user-agent": "Custom/1"})

    assert [r.header("User-Agent") for r in local_server.requests] == ["Acme/2", "Custom/1"]


def test_query_params_are_encoded_and_merged_with_the_url_query(
    client: SafeHttpClient, local_server: LocalServer
) -> None:
    params = {"q": "a b&c=d", "name": "Zoë", "empty": "", "plus": "1+1"}

    response = send(client, "GET", f"{local_server.url}/search?page=2", params=params)

    query = "page=2&q=a+b%26c%3Dd&name=Zo%C3%AB&empty=&plus=1%2B1"
    assert local_server.requests[0].path == f"/search?{query}"
    assert response.url == f"{local_server.url}/search?{query}"


def test_post_sends_body_and_headers(client: SafeHttpClient, local_server: LocalServer) -> None:
    send(
        client,
        "post",
        f"{local_server.url}/submit",
        headers={"Content-Type": "application/json", "X-Api-Key": "k-123"},
        body=b'{"a": 1}',
    )

    request = local_server.requests[0]
    assert (request.method, request.body) == ("POST", b'{"a": 1}')
    assert request.header("Content-Type") == "application/json"
    assert request.header("Content-Length") == "8"
    assert request.header("X-Api-Key") == "k-123"


def test_head_request_returns_headers_without_body(client: SafeHttpClient, local_server: LocalServer) -> None:
    response = send(client, "HEAD", f"{local_server.url}/")

    assert response.status_code == 200
    assert response.headers["Content-Length"] == "2"
    assert response.content == b""


def test_gzip_response_is_decoded(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/z", Reply(headers={"Content-Encoding": "gzip"}, body=gzip.compress(b"hello " * 100)))

    response = send(client, "GET", f"{local_server.url}/z")

    assert response.content == b"hello " * 100


def test_connections_are_reused_between_requests(client: SafeHttpClient, local_server: LocalServer) -> None:
    for _ in range(3):
        send(client, "GET", f"{local_server.url}/")

    assert local_server.hits == 3
    assert local_server.connections == 1


def test_cookies_are_never_kept_between_requests(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/login", Reply(headers={"Set-Cookie": "session=tenant-a; Path=/"}))

    send(client, "GET", f"{local_server.url}/login")
    send(client, "GET", f"{local_server.url}/next")

    assert [r.header("Cookie") for r in local_server.requests] == [None, None]


def test_client_is_safe_to_share_between_threads(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/echo", lambda request: Reply(body=request.path.encode()))
    results: dict[int, list[bytes]] = {}

    def worker(n: int) -> None:
        results[n] = [
            send(client, "GET", f"{local_server.url}/echo", params={"n": str(n), "i": str(i)}).content
            for i in range(10)
        ]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == {n: [f"/echo?n={n}&i={i}".encode() for i in range(10)] for n in range(8)}
    assert local_server.hits == 80
    assert local_server.connections <= 8


def test_environment_proxies_are_ignored(
    client: SafeHttpClient, monkeypatch: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    with LocalServer() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        response = send(client, "GET", f"{local_server.url}/direct")

        assert proxy.connections == 0
    assert response.status_code == 200
    assert [r.path for r in local_server.requests] == ["/direct"]


# ------------------------------------------------------------------------------------------------------------
# Invalid requests send nothing


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/file", "only http and https URLs may be called, the scheme is 'ftp'"),
        ("file:///etc/passwd", "only http and https URLs may be called, the scheme is 'file'"),
        ("gopher://127.0.0.1:70/_x", "only http and https URLs may be called, the scheme is 'gopher'"),
        ("javascript:alert(1)", "only http and https URLs may be called, the scheme is 'javascript'"),
        ("127.0.0.1/path", "only http and https URLs may be called, the scheme is none"),
        ("http:///path", "the URL has no host"),
        ("http://127.0.0.1:99999/", "the URL is malformed"),
        ("", "the URL is empty"),
    ],
)
def test_invalid_url_is_refused(client: SafeHttpClient, url: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        send(client, "GET", url)

    assert str(excinfo.value) == message
    assert excinfo.value.transient is False


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Token": "abc\r\nX-Injected: 1"}, "the value of header X-Token contains CR, LF or NUL"),
        ({"X-Token": "abc\nX-Injected: 1"}, "the value of header X-Token contains CR, LF or NUL"),
        ({"X-Token": "abc\rdef"}, "the value of header X-Token contains CR, LF or NUL"),
        ({"X-Token": "abc\x00"}, "the value of header X-Token contains CR, LF or NUL"),
        ({"X-Token\r\nX-Injected": "1"}, "a header name is not a valid HTTP token (it may contain CR or LF)"),
        ({"Bad Name": "1"}, "a header name is not a valid HTTP token (it may contain CR or LF)"),
        ({"X-Emoji": "\U0001f600"}, "the value of header X-Emoji has characters outside Latin-1"),
    ],
)
def test_header_injection_is_refused_and_nothing_is_sent(
    client: SafeHttpClient, local_server: LocalServer, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        send(client, "GET", f"{local_server.url}/", headers=headers)

    assert str(excinfo.value) == message
    assert local_server.connections == 0


def test_header_with_leading_whitespace_is_refused(client: SafeHttpClient, local_server: LocalServer) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        send(client, "GET", f"{local_server.url}/p?key=secret", headers={"X-Token": " secret-value"})

    assert str(excinfo.value) == f"the request to {local_server.url}/p is invalid (URL or header)"
    assert local_server.connections == 0


@pytest.mark.parametrize(
    ("method", "timeout", "message"),
    [
        ("GE T", 5, "the method is not a valid HTTP method"),
        ("", 5, "the method is not a valid HTTP method"),
        ("GET", 0, "the timeout must be a positive number of seconds"),
        ("GET", -1, "the timeout must be a positive number of seconds"),
    ],
)
def test_invalid_method_or_timeout_is_refused(
    client: SafeHttpClient, local_server: LocalServer, method: str, timeout: float, message: str
) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        send(client, method, f"{local_server.url}/", timeout=timeout)

    assert str(excinfo.value) == message
    assert local_server.connections == 0


# ------------------------------------------------------------------------------------------------------------
# Size limit


def test_response_announcing_more_than_the_limit_is_refused(local_server: LocalServer) -> None:
    local_server.route("/big", Reply(body_size=2048))
    client = SafeHttpClient(LOCAL, max_response_bytes=1024)

    with pytest.raises(ResponseTooLarge) as excinfo:
        send(client, "GET", f"{local_server.url}/big?key=secret")

    assert str(excinfo.value) == (
        f"the response from {local_server.url}/big announces 2048 bytes, over the 1024-byte limit"
    )
    assert excinfo.value.transient is False


def test_streamed_response_is_cut_at_the_limit(local_server: LocalServer) -> None:
    local_server.route("/huge", Reply(body_size=50 * 1024 * 1024, content_length=False))
    client = SafeHttpClient(LOCAL, max_response_bytes=100_000)

    with pytest.raises(ResponseTooLarge) as excinfo:
        send(client, "GET", f"{local_server.url}/huge")

    assert str(excinfo.value) == f"the response from {local_server.url}/huge is larger than the 100000-byte limit"


def test_response_of_exactly_the_limit_is_read(local_server: LocalServer) -> None:
    local_server.route("/fits", Reply(body_size=1024, content_length=False))
    client = SafeHttpClient(LOCAL, max_response_bytes=1024)

    response = send(client, "GET", f"{local_server.url}/fits")

    assert response.content == b"x" * 1024


def test_limit_applies_to_the_decoded_body(local_server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    local_server.route("/bomb", Reply(headers={"Content-Encoding": "gzip"}, body=bomb))
    client = SafeHttpClient(LOCAL, max_response_bytes=1_000_000)

    with pytest.raises(ResponseTooLarge) as excinfo:
        send(client, "GET", f"{local_server.url}/bomb")

    assert len(bomb) < 10_000
    assert str(excinfo.value) == (f"the response from {local_server.url}/bomb is larger than the 1000000-byte limit")


# ------------------------------------------------------------------------------------------------------------
# Timeouts and connection failures


def test_slow_response_times_out(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/slow", Reply(delay=3))

    with pytest.raises(RequestTimeout) as excinfo:
        send(client, "GET", f"{local_server.url}/slow?key=secret", timeout=0.3)

    assert str(excinfo.value) == f"timed out waiting for the response from {local_server.url}/slow"
    assert excinfo.value.transient is True


def test_closed_port_fails_to_connect(client: SafeHttpClient) -> None:
    port = closed_port()

    with pytest.raises(ConnectionFailed) as excinfo:
        send(client, "GET", f"http://127.0.0.1:{port}/x?api_key=secret", headers={"Authorization": "Bearer t"})

    assert str(excinfo.value) == f"connection to http://127.0.0.1:{port}/x refused"
    assert excinfo.value.transient is True
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ is True


def test_unresolvable_name_fails_to_connect(client: SafeHttpClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    with pytest.raises(ConnectionFailed) as excinfo:
        send(client, "GET", "https://nowhere.invalid/v1?token=secret")

    assert str(excinfo.value) == "could not resolve the host of https://nowhere.invalid:443/v1"
    assert excinfo.value.transient is True


def test_server_closing_mid_body_fails_to_connect(local_server: LocalServer, client: SafeHttpClient) -> None:
    local_server.route("/cut", Reply(headers={"Content-Length": "100"}, body=b"short", content_length=False))

    with pytest.raises(ConnectionFailed) as excinfo:
        send(client, "GET", f"{local_server.url}/cut")

    assert str(excinfo.value) == (f"the connection to {local_server.url}/cut broke before the response was complete")
    assert excinfo.value.transient is True


# ------------------------------------------------------------------------------------------------------------
# Redirects


def test_redirect_is_followed_to_the_final_url(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/old", Reply(301, headers={"Location": "/new?x=1"}))
    local_server.route("/new", Reply(body=b"moved here"))

    response = send(client, "GET", f"{local_server.url}/old", params={"q": "1"})

    assert (response.status_code, response.content) == (200, b"moved here")
    assert response.url == f"{local_server.url}/new?x=1"
    assert response.redirects == 1
    assert [r.path for r in local_server.requests] == ["/old?q=1", "/new?x=1"]
    assert local_server.connections == 1


def test_too_many_redirects_are_refused(local_server: LocalServer) -> None:
    local_server.route("/loop", Reply(302, headers={"Location": "/loop"}))
    client = SafeHttpClient(LOCAL, max_redirects=3)

    with pytest.raises(TooManyRedirects) as excinfo:
        send(client, "GET", f"{local_server.url}/loop?token=secret")

    assert str(excinfo.value) == f"{local_server.url}/loop redirected more than 3 times (the limit)"
    assert excinfo.value.transient is False
    assert local_server.hits == 4


def test_redirects_up_to_the_limit_are_followed(local_server: LocalServer) -> None:
    local_server.route("/a", Reply(302, headers={"Location": "/b"}))
    local_server.route("/b", Reply(302, headers={"Location": "/c"}))
    client = SafeHttpClient(LOCAL, max_redirects=2)

    response = send(client, "GET", f"{local_server.url}/a")

    assert (response.status_code, response.redirects) == (200, 2)
    assert [r.path for r in local_server.requests] == ["/a", "/b", "/c"]


def test_303_turns_post_into_get_without_body(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/form", Reply(303, headers={"Location": "/result"}))

    send(client, "POST", f"{local_server.url}/form", body=b"a=1", headers={"Content-Type": "text/plain"})

    result = local_server.requests[1]
    assert (result.method, result.path, result.body) == ("GET", "/result", b"")
    assert result.header("Content-Type") is None
    assert result.header("Content-Length") is None


@pytest.mark.parametrize("status", [301, 302])
def test_301_and_302_turn_post_into_get(client: SafeHttpClient, local_server: LocalServer, status: int) -> None:
    local_server.route("/form", Reply(status, headers={"Location": "/result"}))

    send(client, "POST", f"{local_server.url}/form", body=b"a=1")

    assert [(r.method, r.body) for r in local_server.requests] == [("POST", b"a=1"), ("GET", b"")]


def test_302_keeps_put_and_its_body(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/doc", Reply(302, headers={"Location": "/doc2"}))

    send(client, "PUT", f"{local_server.url}/doc", body=b"v2")

    assert [(r.method, r.body) for r in local_server.requests] == [("PUT", b"v2"), ("PUT", b"v2")]


@pytest.mark.parametrize("status", [307, 308])
def test_307_and_308_keep_method_and_body(client: SafeHttpClient, local_server: LocalServer, status: int) -> None:
    local_server.route("/api", Reply(status, headers={"Location": "/api2"}))

    send(client, "POST", f"{local_server.url}/api", body=b'{"x": 1}', headers={"Content-Type": "application/json"})

    second = local_server.requests[1]
    assert (second.method, second.path, second.body) == ("POST", "/api2", b'{"x": 1}')
    assert second.header("Content-Type") == "application/json"


SECRET_HEADERS = {
    "Authorization": "Bearer secret-token",
    "Proxy-Authorization": "Basic c2VjcmV0",
    "Cookie": "session=secret",
    "X-Api-Key": "secret-key",
    "X-Trace": "trace-1",
}


def _secret_headers(request: RecordedRequest) -> dict[str, str | None]:
    return {name: request.header(name) for name in SECRET_HEADERS}


def test_cross_origin_redirect_drops_credentials(client: SafeHttpClient, local_server: LocalServer) -> None:
    with LocalServer() as other:
        local_server.route("/start", Reply(302, headers={"Location": f"{other.url}/landing"}))

        send(client, "GET", f"{local_server.url}/start", headers=SECRET_HEADERS, sensitive_headers=["x-api-key"])

        assert _secret_headers(other.requests[0]) == {
            "Authorization": None,
            "Proxy-Authorization": None,
            "Cookie": None,
            "X-Api-Key": None,
            "X-Trace": "trace-1",
        }
    assert _secret_headers(local_server.requests[0]) == SECRET_HEADERS


def test_redirect_back_to_the_origin_after_leaving_it_stays_without_credentials(
    client: SafeHttpClient, local_server: LocalServer
) -> None:
    with LocalServer() as other:
        local_server.route("/start", Reply(302, headers={"Location": f"{other.url}/bounce"}))
        other.route("/bounce", Reply(302, headers={"Location": f"{local_server.url}/end"}))

        send(client, "GET", f"{local_server.url}/start", headers=SECRET_HEADERS, sensitive_headers=["X-Api-Key"])

    assert local_server.requests[1].path == "/end"
    assert local_server.requests[1].header("Authorization") is None
    assert local_server.requests[1].header("X-Api-Key") is None


def test_redirect_origin_is_judged_by_the_host_actually_connected_to(
    client: SafeHttpClient, local_server: LocalServer
) -> None:
    # urllib.parse reads this Location as 127.0.0.1:<local_server.port> (same origin); urllib3 connects to
    # <other.port>. Credentials must follow what urllib3 does.
    with LocalServer() as other:
        location = f"http://127.0.0.1:{other.port}\\@127.0.0.1:{local_server.port}/"
        local_server.route("/start", Reply(302, headers={"Location": location}))

        send(client, "GET", f"{local_server.url}/start", headers=SECRET_HEADERS, sensitive_headers=["X-Api-Key"])

        assert other.hits == 1
        assert other.requests[0].header("Authorization") is None
        assert other.requests[0].header("X-Api-Key") is None


def test_same_origin_redirect_keeps_credentials(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/start", Reply(307, headers={"Location": f"{local_server.url}/next"}))

    send(client, "GET", f"{local_server.url}/start", headers=SECRET_HEADERS, sensitive_headers=["X-Api-Key"])

    assert _secret_headers(local_server.requests[1]) == SECRET_HEADERS


@pytest.mark.parametrize(
    ("location", "scheme"),
    [("ftp://127.0.0.1/file", "'ftp'"), ("file:///etc/passwd", "'file'"), ("gopher://127.0.0.1/", "'gopher'")],
)
def test_redirect_to_non_http_scheme_is_refused(
    client: SafeHttpClient, local_server: LocalServer, location: str, scheme: str
) -> None:
    local_server.route("/start", Reply(302, headers={"Location": location}))

    with pytest.raises(InvalidRequest) as excinfo:
        send(client, "GET", f"{local_server.url}/start?token=secret")

    assert str(excinfo.value) == (
        f"only http and https URLs may be called, the scheme is {scheme} (redirect from {local_server.url}/start)"
    )
    assert local_server.hits == 1


def test_redirect_without_location_is_the_final_response(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/odd", Reply(302, body=b"no location"))

    response = send(client, "GET", f"{local_server.url}/odd")

    assert (response.status_code, response.content, response.redirects) == (302, b"no location", 0)


def test_redirect_to_a_refused_address_sends_nothing_there(local_server: LocalServer) -> None:
    local_server.route("/start", Reply(302, headers={"Location": "http://10.0.0.1/admin"}))
    client = SafeHttpClient(LOCAL)

    with pytest.raises(BlockedDestination) as excinfo:
        send(client, "GET", f"{local_server.url}/start")

    assert str(excinfo.value) == (
        "refused: 10.0.0.1 is a private address; if it is your own server, add 10.0.0.1:80 to "
        "CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )


def test_json_body_round_trip(client: SafeHttpClient, local_server: LocalServer) -> None:
    local_server.route("/echo", lambda request: Reply(body=json.dumps({"got": request.body.decode()}).encode()))

    response = send(client, "PATCH", f"{local_server.url}/echo", body=b"hello")

    assert json.loads(response.content) == {"got": "hello"}
