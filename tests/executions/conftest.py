"""Fixtures for execution tests. Helpers that build connectors and drive executions live in helpers.py.

Executions created through the API are not dispatched in these tests: pytest-django runs each test in a
transaction that never commits, so `transaction.on_commit` never fires and a test drives `process_execution`
itself, exactly as a worker would.
"""

import pytest

from executions.runtime import reset_runner
from tests.executions.helpers import json_reply, make_connector
from tests.local_server import local_server  # noqa: F401 - fixture for the tests of this folder


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """Steps may call 127.0.0.1 (and only it) while a test runs; the process's runner reads the setting anew."""
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    yield
    reset_runner()


@pytest.fixture
def two_step_connector(acme, local_server):  # noqa: F811 - the fixture imported above
    """Steps `one` and `two`, each answering JSON at once from the local server."""
    local_server.route("/one", json_reply({"id": 1}))
    local_server.route("/two", json_reply({"id": 2}))
    return make_connector(
        acme, [{"name": "one", "url": f"{local_server.url}/one"}, {"name": "two", "url": f"{local_server.url}/two"}]
    )
