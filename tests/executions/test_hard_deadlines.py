"""A slow-drip server cannot hold an execution past its step timeout or its max_duration_seconds, whether the
execution runs on a Celery worker (threads pool: no soft time limit signal) or in the embedded pool.

Behaviour is asserted (the error, and that the server could not send its whole body), never a duration.
"""

from __future__ import annotations

import time

import pytest

from executions.models import Execution, Status
from executions.runtime import reset_runner
from tests.conftest import client_for
from tests.executions.helpers import execute, make_connector
from tests.executions.test_celery_worker import celery_worker, finished  # noqa: F401 - the worker fixture
from tests.local_server import Reply

pytestmark = pytest.mark.django_db(transaction=True)

BODY = b"x" * 600  # 30 s at one byte per 50 ms
DRIPS = {
    "content-length": Reply(200, body=BODY, drip=0.05),
    "no-content-length": Reply(200, body=BODY, drip=0.05, content_length=False),
    "headers": Reply(200, body=BODY, drip=0.05, drip_headers=True),
}


def slow_connector(acme, server, drip: str, **step):
    server.route("/drip", DRIPS[drip])
    steps = [{"name": "slow", "url": f"{server.url}/drip", "retry": {"max_attempts": 1}, **step}]
    return make_connector(acme, steps)


def wait_until_finished(execution_id, timeout: float = 60.0) -> Execution:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if execution := finished(execution_id):
            return execution
        time.sleep(0.1)
    pytest.fail(f"execution {execution_id} did not finish within {timeout} s")


@pytest.fixture
def embedded(settings):
    """Executions go to the in-process pool, as with `bin/serve` (no broker)."""
    settings.CELERY_BROKER_URL = ""
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    yield
    reset_runner()


def run(alice, acme, connector) -> Execution:
    response = execute(client_for(alice, acme), connector)
    assert response.status_code == 202
    return wait_until_finished(response.json()["id"])


@pytest.mark.parametrize("drip", list(DRIPS))
def test_embedded_step_timeout_is_a_total_deadline(embedded, alice, acme, local_server, drip):
    connector = slow_connector(acme, local_server, drip, timeout_seconds=1)

    execution = run(alice, acme, connector)

    step = execution.step_records.get()
    assert (execution.status, step.status) == (Status.FAILED, "failed")
    assert step.error == f"timed out waiting for the response from {local_server.url}/drip"
    assert local_server.dripped < len(BODY)


def test_embedded_max_duration_stops_a_slow_step(embedded, alice, acme, local_server):
    local_server.route("/drip", DRIPS["content-length"])
    connector = make_connector(
        acme,
        [{"name": "slow", "url": f"{local_server.url}/drip", "timeout_seconds": 120}],
        max_duration_seconds=1,
    )

    execution = run(alice, acme, connector)

    step = execution.step_records.get()
    assert execution.status == Status.FAILED
    assert step.error.endswith("; the execution ran out of time (max_duration_seconds)")
    assert local_server.dripped < len(BODY)


def test_embedded_slow_runs_do_not_hold_the_pool(embedded, settings, alice, acme, local_server):
    settings.CONNECTORS_EMBEDDED_WORKERS = 4  # the pool already exists in a longer run; its size is not the point
    local_server.route("/fast", Reply(200, body=b"ok"))
    slow = slow_connector(acme, local_server, "content-length", timeout_seconds=1)
    fast = make_connector(acme, [{"name": "fast", "url": f"{local_server.url}/fast"}], name="Fast")
    api = client_for(alice, acme)

    slow_ids = [execute(api, slow).json()["id"] for _ in range(5)]
    fast_id = execute(api, fast).json()["id"]

    assert wait_until_finished(fast_id).status == Status.SUCCEEDED
    assert {wait_until_finished(i).status for i in slow_ids} == {Status.FAILED}


@pytest.mark.parametrize("drip", list(DRIPS))
def test_celery_step_timeout_is_a_total_deadline(celery_worker, alice, acme, local_server, drip):  # noqa: F811
    connector = slow_connector(acme, local_server, drip, timeout_seconds=1)

    execution = run(alice, acme, connector)

    step = execution.step_records.get()
    assert execution.status == Status.FAILED
    assert step.error == f"timed out waiting for the response from {local_server.url}/drip"
    assert local_server.dripped < len(BODY)


def test_celery_max_duration_stops_a_slow_step(celery_worker, alice, acme, local_server):  # noqa: F811
    local_server.route("/drip", DRIPS["no-content-length"])
    connector = make_connector(
        acme,
        [{"name": "slow", "url": f"{local_server.url}/drip", "timeout_seconds": 120}],
        max_duration_seconds=1,
    )

    execution = run(alice, acme, connector)

    assert execution.status == Status.FAILED
    assert execution.step_records.get().error.endswith("(max_duration_seconds)")
    assert local_server.dripped < len(BODY)
