"""`Prefer: wait=N` on execute (docs/api.md, "Synchronous wait"), in embedded mode: the execution runs in this
process's pool and wakes the waiting request through an in-process event. tests/executions/
test_prefer_wait_worker.py does the same through a real Celery worker and Redis pub/sub."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions import waiting
from executions.models import Execution
from tests.conftest import client_for
from tests.executions.helpers import execute, json_reply, make_connector
from tests.local_server import Reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(alice, acme, settings):
    settings.CELERY_BROKER_URL = ""  # embedded mode
    yield client_for(alice, acme)
    # Let the embedded pool finish what these tests started before the database goes away.
    give_up = time.monotonic() + 30
    while Execution.objects.filter(status__in=["queued", "running"]).exists() and time.monotonic() < give_up:
        time.sleep(0.1)


@pytest.fixture
def fast(acme, local_server):
    local_server.route("/fast", json_reply({"ok": True}))
    return make_connector(acme, [{"name": "call", "url": f"{local_server.url}/fast", "extract": {"ok": "ok"}}])


@pytest.fixture
def slow(acme, local_server):
    local_server.route("/slow", Reply(200, delay=4))
    return make_connector(acme, [{"name": "call", "url": f"{local_server.url}/slow", "timeout_seconds": 10}])


def test_an_execution_that_ends_in_time_is_answered_200(api, fast):
    response = execute(api, fast, HTTP_PREFER="wait=10")
    assert response.status_code == 200, response.content
    assert response["Preference-Applied"] == "wait=10"
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["output"] == {"call": {"ok": True}}
    assert [step["name"] for step in body["steps"]] == ["call"]


def test_an_execution_still_running_is_answered_202_as_it_stands(api, slow):
    response = execute(api, slow, HTTP_PREFER="wait=1")
    assert response.status_code == 202
    assert response["Preference-Applied"] == "wait=1"
    assert response.json()["status"] in ("queued", "running")


@pytest.mark.parametrize("header", ["wait=0", "wait=-3", "wait=soon", "respond-async", ""])
def test_a_wait_below_one_or_unreadable_is_ignored(api, slow, header):
    response = execute(api, slow, HTTP_PREFER=header)
    assert response.status_code == 202
    assert "Preference-Applied" not in response


def test_a_wait_over_the_maximum_is_clamped(api, fast, settings):
    response = execute(api, fast, HTTP_PREFER="respond-async, wait=999")
    assert response.status_code == 200
    assert response["Preference-Applied"] == f"wait={settings.CONNECTORS_MAX_WAIT_SECONDS}"


def test_waiting_reads_the_database_twice_however_long_it_waits(api, slow, monkeypatch):
    counts = []
    api.get("/api/v1/connectors")  # the caller's first request reads its user and membership
    for seconds in (1, 2):
        with CaptureQueriesContext(connection) as captured:
            response = execute(api, slow, HTTP_PREFER=f"wait={seconds}")
        assert response.status_code == 202
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("wait=5", 5), ("wait=60", 60), ("handling=lenient; wait=7", 7), ('wait="9"', 9), ("WAIT = 3", 3)],
)
def test_prefer_header_parsing(header, seconds):
    assert waiting.parse_prefer(header) == waiting.WaitPreference(seconds)


def test_prefer_header_without_wait_is_none():
    assert waiting.parse_prefer("return=minimal") is None
    assert waiting.parse_prefer("await=5") is None
