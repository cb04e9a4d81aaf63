"""The finishing statement carries what a run counted in memory: its per-step statistics and the HTTP requests
of the month's usage. Each is counted exactly once whichever way the run ends (finished, waiting for a retry,
a finish retried after a database error), and a finish that lost its claim counts nothing.

These drive executions/runtime.py and executions/lifecycle.py in the test process; the query counts are in
test_query_counts.py.
"""

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from connectors.engine.exchange import RequestEvent
from connectors.engine.http import SafeHttpClient
from connectors.models import Connector
from executions import lifecycle, sealing, services
from executions.models import ConnectorDailyStats, Execution, StepDailyStats
from executions.runtime import process_execution
from executions.step_stats import StepStatsCollector
from monitoring import lifecycle as monitoring
from tests.executions.helpers import json_reply, let_retry_become_due, make_connector
from tests.local_server import Reply
from usage.models import MonthlyHttpRequests

pytestmark = pytest.mark.django_db


@pytest.fixture
def connector(two_step_connector):
    """The connector of most tests here (steps `one` and `two`)."""
    return two_step_connector


def _queued(connector) -> Execution:
    return services.execution_create(connector=connector, input={}, enqueue=False)


def _step_requests(connector) -> dict[str, int]:
    return dict(StepDailyStats.objects.filter(connector=connector).values_list("step_name", "requests"))


def _http_requests(workspace) -> int:
    return sum(MonthlyHttpRequests.objects.filter(workspace=workspace).values_list("http_requests", flat=True))


def _collector(*steps: str) -> StepStatsCollector:
    collector = StepStatsCollector()
    for step in steps:
        collector(RequestEvent(step=step, status_code=200, elapsed_ms=3, retry=False))
    return collector


def test_a_finished_run_counts_its_step_statistics_and_requests_once_in_its_finishing_statement(acme, connector):
    with CaptureQueriesContext(connection) as captured:
        process_execution(_queued(connector).id)
    process_execution(_queued(connector).id)

    assert _step_requests(connector) == {"one": 2, "two": 2}
    assert _http_requests(acme) == 4
    writes = [q["sql"] for q in captured.captured_queries if "executions_stepdailystats" in q["sql"]]
    assert len(writes) == 1
    assert "UPDATE executions_execution" in writes[0]
    assert "INSERT INTO usage_monthlyhttprequests" in writes[0]
    # Not the row the execute calls lock for the quota: a finish does not wait for them, nor they for it.
    assert "usage_monthlyusage" not in writes[0]


def test_a_run_waiting_for_a_retry_counts_its_requests_then_its_finish_counts_the_rest(acme, local_server):
    local_server.route("/flaky", [Reply(503), json_reply({"ok": True})])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    execution = _queued(connector)

    process_execution(execution.id)  # 503: the run waits for its retry, its claim ends

    assert Execution.objects.get(pk=execution.pk).status == "queued"
    assert _step_requests(connector) == {"flaky": 1}
    assert _http_requests(acme) == 1

    let_retry_become_due(execution.id)
    process_execution(execution.id)

    assert Execution.objects.get(pk=execution.pk).status == "succeeded"
    assert _step_requests(connector) == {"flaky": 2}
    assert _http_requests(acme) == 2


def test_a_finish_that_lost_its_claim_writes_no_statistics(acme, connector):
    execution = lifecycle.claim(_queued(connector).id)
    Execution.objects.filter(pk=execution.pk).update(status="queued", worker="")  # the sweeper took it away
    counts = _collector("one", "two")

    with monitoring.execution_scope(execution):
        monitoring.request_sent(200)
        monitoring.request_sent(200)
        finished = lifecycle.finish(execution, status="succeeded", output={}, error=None, notes=[], step_counts=counts)
        assert _http_requests(acme) == 0

    assert finished is False
    assert _step_requests(connector) == {}
    assert counts.rows() == []  # not written later by the run's flush either
    assert Connector.objects.get(pk=connector.pk).total_executions == 0
    assert not ConnectorDailyStats.objects.filter(connector=connector).exists()
    # The requests were sent all the same: the usage counts them when the claim ends, as for a run handed back.
    assert _http_requests(acme) == 2


def test_a_finish_retried_after_a_database_error_counts_once(acme, connector, monkeypatch):
    execution = lifecycle.claim(_queued(connector).id)
    counts = _collector("one", "two")
    original = lifecycle._finish_in_one_statement

    def fails_once(*args, **kwargs):
        monkeypatch.setattr(lifecycle, "_finish_in_one_statement", original)
        raise OperationalError("connection lost")

    monkeypatch.setattr(lifecycle, "_finish_in_one_statement", fails_once)

    with monitoring.execution_scope(execution):
        monitoring.request_sent(200)
        with pytest.raises(OperationalError):
            lifecycle.finish(execution, status="succeeded", output={}, error=None, notes=[], step_counts=counts)
        assert lifecycle.finish(execution, status="succeeded", output={}, error=None, notes=[], step_counts=counts)

    assert _step_requests(connector) == {"one": 1, "two": 1}
    assert _http_requests(acme) == 1
    assert Connector.objects.get(pk=connector.pk).total_executions == 1


def test_the_claimed_instance_holds_the_row_as_the_orm_reads_it(connector):
    queued = _queued(connector)
    queued.input = {"phone": "+1 555", "nested": [1, {"a": None}]}
    queued.save(update_fields=["input"])

    claimed = lifecycle.claim(queued.id)

    read = Execution.objects.get(pk=queued.pk)
    for field in Execution._meta.concrete_fields:
        assert getattr(claimed, field.attname) == getattr(read, field.attname), field.name
    assert claimed.input == {"phone": "+1 555", "nested": [1, {"a": None}]}
    assert claimed.definition["steps"][0]["name"] == "one"
    assert claimed._state.adding is False


def test_the_last_step_is_recorded_by_the_finish(connector):
    execution = _queued(connector)
    recorded = []

    with CaptureQueriesContext(connection) as captured:
        process_execution(execution.id, on_step=recorded.append)

    steps = [sql for sql in captured.captured_queries if "INSERT INTO executions_executionstep" in sql["sql"]]
    assert len(steps) == 2  # step one's checkpoint, then the finish with step two
    assert "UPDATE executions_execution SET status" in steps[1]["sql"]
    assert [r.name for r in recorded] == ["one", "two"]  # on_step still sees every step, once written
    assert list(execution.step_records.order_by("index").values_list("name", "status")) == [
        ("one", "succeeded"),
        ("two", "succeeded"),
    ]


def test_a_run_cancelled_during_its_last_step_still_records_it(acme, connector, local_server, monkeypatch):
    execution = _queued(connector)
    send = SafeHttpClient.send

    def send_then_cancel(client, request, **kwargs):
        response = send(client, request, **kwargs)
        if request.url.endswith("/two"):
            services.execution_cancel(execution=Execution.objects.get(pk=execution.pk))
        return response

    monkeypatch.setattr(SafeHttpClient, "send", send_then_cancel)
    process_execution(execution.id)

    execution.refresh_from_db()
    assert execution.status == "cancelled"
    assert list(execution.step_records.order_by("index").values_list("name", flat=True)) == ["one", "two"]
    connector.refresh_from_db()
    assert (connector.total_executions, connector.successful_executions) == (1, 0)  # counted once, as cancelled


def test_a_last_step_that_cannot_be_written_fails_the_run_instead_of_leaving_it_running(connector, monkeypatch):
    execution = _queued(connector)
    seal = sealing.seal

    def seal_but_not_step_two(execution_id, index, values):
        if index == 1:
            raise ValueError("cannot seal this step")
        return seal(execution_id, index, values)

    monkeypatch.setattr(sealing, "seal", seal_but_not_step_two)
    process_execution(execution.id)

    execution.refresh_from_db()
    assert (execution.status, execution.error) == ("failed", "The execution stopped because of an internal error.")
    assert list(execution.step_records.values_list("name", flat=True)) == ["one"]
