"""SSRF through the whole execution path: a step whose destination the address policy refuses fails with a
message saying why, and nothing reaches the destination. Only 127.0.0.1 is allowlisted in these tests."""

import socket
from collections.abc import Iterator

import pytest

from executions.runtime import reset_runner
from tests.executions.helpers import make_connector, run_api
from tests.local_server import Reply


class Listener:
    """A bare TCP listener that only counts the connections made to it (it never answers)."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                client, _ = self.sock.accept()
            except BlockingIOError:
                return count
            client.close()
            count += 1


@pytest.fixture
def listener_on_127_0_0_2() -> Iterator[Listener]:
    listener = Listener("127.0.0.2")
    yield listener
    listener.sock.close()


def test_step_to_a_loopback_address_not_allowlisted_is_refused(alice_api, acme, listener_on_127_0_0_2):
    connector = make_connector(
        acme, [{"name": "internal", "url": f"http://127.0.0.2:{listener_on_127_0_0_2.port}/admin"}]
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["error"] == (
        "step 'internal' failed: refused: 127.0.0.2 is a loopback address"
        f"; if it is your own server, add 127.0.0.2:{listener_on_127_0_0_2.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )
    assert execution["steps"][0]["attempts"] == 1
    assert execution["steps"][0]["response"] is None
    assert listener_on_127_0_0_2.connections() == 0


def test_host_name_resolving_to_a_private_address_is_refused(alice_api, acme, local_server, fake_dns, net_guard):
    fake_dns.add("crm.partner.test", "10.0.0.1")
    connector = make_connector(acme, [{"name": "crm", "url": f"http://crm.partner.test:{local_server.port}/contacts"}])

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["error"] == (
        "step 'crm' failed: refused: crm.partner.test resolves to 10.0.0.1, which is a private address"
        f"; if it is your own server, add crm.partner.test:{local_server.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )
    assert fake_dns.lookups == ["crm.partner.test"]
    assert local_server.hits == 0
    assert net_guard.violations == []


def test_host_name_with_one_refused_address_among_allowed_ones_is_refused(alice_api, acme, local_server, fake_dns):
    fake_dns.add("mixed.partner.test", "127.0.0.1", "10.0.0.1")
    connector = make_connector(acme, [{"name": "mixed", "url": f"http://mixed.partner.test:{local_server.port}/x"}])

    execution = run_api(alice_api, connector)

    assert execution["error"] == (
        "step 'mixed' failed: refused: mixed.partner.test resolves to 10.0.0.1, which is a private address"
        f"; if it is your own server, add mixed.partner.test:{local_server.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )
    assert local_server.hits == 0


def test_url_rendered_from_input_to_the_metadata_address_is_refused(alice_api, acme):
    connector = make_connector(acme, [{"name": "fetch", "url": "{{input.url}}"}])

    execution = run_api(alice_api, connector, {"url": "http://169.254.169.254/latest/meta-data/"})

    assert execution["status"] == "failed"
    assert execution["error"] == "step 'fetch' failed: refused: 169.254.169.254 is a cloud metadata address"


def test_redirect_to_a_refused_address_is_not_followed(alice_api, acme, local_server, listener_on_127_0_0_2):
    target = f"http://127.0.0.2:{listener_on_127_0_0_2.port}/admin"
    local_server.route("/out", Reply(302, headers={"Location": target}))
    connector = make_connector(acme, [{"name": "out", "url": f"{local_server.url}/out"}])

    execution = run_api(alice_api, connector)

    assert execution["error"] == (
        "step 'out' failed: refused: 127.0.0.2 is a loopback address"
        f"; if it is your own server, add 127.0.0.2:{listener_on_127_0_0_2.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )
    assert [r.path for r in local_server.requests] == ["/out"]
    assert listener_on_127_0_0_2.connections() == 0


def test_without_the_allowlist_loopback_itself_is_refused(alice_api, acme, local_server, settings):
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = []
    reset_runner()
    connector = make_connector(acme, [{"name": "local", "url": f"{local_server.url}/x"}])

    execution = run_api(alice_api, connector)

    assert execution["error"] == (
        "step 'local' failed: refused: 127.0.0.1 is a loopback address"
        f"; if it is your own server, add 127.0.0.1:{local_server.port} to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )
    assert local_server.hits == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/x", "ftp://127.0.0.1/x"])
def test_rendered_url_with_another_scheme_is_refused(alice_api, acme, url):
    connector = make_connector(acme, [{"name": "fetch", "url": "{{input.url}}"}])

    execution = run_api(alice_api, connector, {"url": url})

    assert execution["error"] == "step 'fetch' failed: the rendered URL must start with http:// or https://"
