"""Retries through the execution lifecycle: a step waiting for its next attempt hands the worker back (the
execution returns to `queued` with `pending_retry` and a `run_after`), and a later pickup resumes it."""

import email.utils
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import dispatch
from executions.models import Execution, Status
from executions.runtime import process_execution
from tests.executions.helpers import execute, json_reply, let_retry_become_due, make_connector, run_to_end
from tests.local_server import Reply


@pytest.fixture
def fixed_backoff(monkeypatch):
    """Every computed wait (not a Retry-After) is 30 s, so the timing assertions are exact."""
    monkeypatch.setattr("connectors.engine.runner.backoff_delay", _thirty_seconds_unless_told)


def _thirty_seconds_unless_told(failed_attempts, retry_after, rng=None):
    return 30.0 if retry_after is None else min(max(retry_after, 0.0), 300.0)


def test_503_503_200_succeeds_after_three_attempts(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/flaky", [Reply(503), Reply(503), Reply(200)])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    execution_id = execute(alice_api, connector).json()["id"]

    process_execution(execution_id)
    first_wait = Execution.objects.get(pk=execution_id)
    assert first_wait.status == Status.QUEUED
    assert first_wait.pending_retry["index"] == 0
    assert first_wait.pending_retry["attempts"] == 1
    assert first_wait.pending_retry["error"] == "HTTP 503"
    assert first_wait.step_records.count() == 0
    let_retry_become_due(execution_id)
    process_execution(execution_id)
    assert Execution.objects.get(pk=execution_id).pending_retry["attempts"] == 2
    let_retry_become_due(execution_id)
    process_execution(execution_id)

    execution = alice_api.get(f"/api/v1/executions/{execution_id}").json()
    assert execution["status"] == "succeeded"
    assert execution["attempts"] == 3
    [step] = execution["steps"]
    assert (step["status"], step["attempts"], step["response"]["status_code"]) == ("succeeded", 3, 200)
    assert Execution.objects.get(pk=execution_id).pending_retry == {}
    assert local_server.hits == 3


def test_waiting_retry_releases_the_worker_and_is_enqueued_with_its_delay(
    alice_api, acme, local_server, fixed_backoff, django_capture_on_commit_callbacks, monkeypatch
):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    execution_id = execute(alice_api, connector).json()["id"]
    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kwargs: sent.append((str(execution_id), kwargs)))
    started = time.monotonic()

    with django_capture_on_commit_callbacks(execute=True):
        process_execution(execution_id)

    assert time.monotonic() - started < 5
    assert sent == [(execution_id, {"delay": 30.0, "max_duration": 300})]
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Status.QUEUED
    assert execution.worker == ""
    assert timedelta(seconds=28) < execution.run_after - timezone.now() <= timedelta(seconds=30)


def test_early_pickup_of_a_waiting_retry_does_nothing(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    execution_id = execute(alice_api, connector).json()["id"]
    process_execution(execution_id)

    assert process_execution(execution_id) is None

    assert Execution.objects.get(pk=execution_id).status == Status.QUEUED
    assert local_server.hits == 1


def test_400_is_not_retried(alice_api, acme, local_server):
    local_server.route("/bad", json_reply({"error": "invalid number"}, status=400))
    connector = make_connector(acme, [{"name": "bad", "url": f"{local_server.url}/bad", "retry": {"max_attempts": 5}}])
    execution_id = execute(alice_api, connector).json()["id"]

    process_execution(execution_id)

    execution = alice_api.get(f"/api/v1/executions/{execution_id}").json()
    assert execution["status"] == "failed"
    assert execution["steps"][0]["attempts"] == 1
    assert execution["steps"][0]["error"] == "HTTP 400"
    assert local_server.hits == 1


def test_transient_failure_fails_once_attempts_are_used_up(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/down", Reply(500))
    connector = make_connector(
        acme, [{"name": "down", "url": f"{local_server.url}/down", "retry": {"max_attempts": 2}}]
    )

    execution = run_to_end(execute(alice_api, connector).json()["id"])

    assert execution.status == Status.FAILED
    assert execution.error == "step 'down' failed: HTTP 500"
    assert execution.step_records.get().attempts == 2
    assert local_server.hits == 2


def test_retry_after_seconds_sets_the_wait(alice_api, acme, local_server):
    local_server.route("/busy", Reply(429, headers={"Retry-After": "120"}))
    connector = make_connector(acme, [{"name": "busy", "url": f"{local_server.url}/busy"}])
    execution_id = execute(alice_api, connector).json()["id"]
    before = timezone.now()

    process_execution(execution_id)

    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Status.QUEUED
    assert execution.pending_retry["error"] == "HTTP 429"
    assert before + timedelta(seconds=120) <= execution.run_after <= timezone.now() + timedelta(seconds=120)


def test_retry_after_http_date_sets_the_wait(alice_api, acme, local_server):
    due = timezone.now().replace(microsecond=0) + timedelta(seconds=90)
    local_server.route("/busy", Reply(503, headers={"Retry-After": email.utils.format_datetime(due, usegmt=True)}))
    connector = make_connector(acme, [{"name": "busy", "url": f"{local_server.url}/busy"}])
    execution_id = execute(alice_api, connector).json()["id"]

    process_execution(execution_id)

    run_after = Execution.objects.get(pk=execution_id).run_after
    assert abs((run_after - due).total_seconds()) < 1.5


def test_retry_after_is_capped_at_300_seconds(alice_api, acme, local_server):
    local_server.route("/busy", Reply(503, headers={"Retry-After": "3600"}))
    connector = make_connector(acme, [{"name": "busy", "url": f"{local_server.url}/busy"}], max_duration_seconds=900)
    execution_id = execute(alice_api, connector).json()["id"]
    before = timezone.now()

    process_execution(execution_id)

    run_after = Execution.objects.get(pk=execution_id).run_after
    assert before + timedelta(seconds=300) <= run_after <= timezone.now() + timedelta(seconds=300)


def test_retry_that_would_overrun_max_duration_fails_the_execution(alice_api, acme, local_server):
    local_server.route("/busy", Reply(503, headers={"Retry-After": "30"}))
    connector = make_connector(acme, [{"name": "busy", "url": f"{local_server.url}/busy"}], max_duration_seconds=10)
    execution_id = execute(alice_api, connector).json()["id"]

    process_execution(execution_id)

    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Status.FAILED
    assert execution.error == (
        "step 'busy' failed: HTTP 503; no time left for another attempt within max_duration_seconds"
    )


def test_completed_steps_are_not_sent_again_when_a_later_step_retries(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/first", json_reply({"id": 7}, **{"X-Session": "s-1"}))
    local_server.route("/second", [Reply(503), Reply(502), Reply(200)])
    connector = make_connector(
        acme,
        [
            {"name": "first", "url": f"{local_server.url}/first", "extract": {"id": "id"}},
            {
                "name": "second",
                "url": f"{local_server.url}/second",
                "query": {"id": "{{steps.first.id}}", "session": "{{steps.first.response.headers.x-session}}"},
            },
        ],
    )

    execution = run_to_end(execute(alice_api, connector).json()["id"])

    assert execution.status == Status.SUCCEEDED
    assert [r.path for r in local_server.requests] == [
        "/first",
        "/second?id=7&session=s-1",
        "/second?id=7&session=s-1",
        "/second?id=7&session=s-1",
    ]
    assert [(s.name, s.attempts) for s in execution.step_records.all()] == [("first", 1), ("second", 3)]


def test_timeout_is_retried_as_transient(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/slow", [Reply(200, delay=3), Reply(200)])
    connector = make_connector(
        acme, [{"name": "slow", "url": f"{local_server.url}/slow", "timeout_seconds": 1, "retry": {"max_attempts": 2}}]
    )
    execution_id = execute(alice_api, connector).json()["id"]

    process_execution(execution_id)

    waiting = Execution.objects.get(pk=execution_id)
    assert waiting.status == Status.QUEUED
    assert waiting.pending_retry["error"] == f"timed out waiting for the response from {local_server.url}/slow"
    let_retry_become_due(execution_id)
    process_execution(execution_id)
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Status.SUCCEEDED
    assert execution.step_records.get().attempts == 2


def test_cancelling_an_execution_waiting_for_a_retry_stops_it(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    execution_id = execute(alice_api, connector).json()["id"]
    process_execution(execution_id)

    response = alice_api.post(f"/api/v1/executions/{execution_id}/cancel")
    let_retry_become_due(execution_id)

    assert response.json()["status"] == "cancelled"
    assert process_execution(execution_id) is None
    assert local_server.hits == 1


def test_first_attempts_start_is_kept_across_retries(alice_api, acme, local_server, fixed_backoff):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    execution_id = execute(alice_api, connector).json()["id"]
    process_execution(execution_id)
    first_started = Execution.objects.get(pk=execution_id).pending_retry["started_at"]

    execution = run_to_end(execution_id)

    assert execution.step_records.get().started_at.isoformat() == first_started


@pytest.mark.xfail(
    strict=True,
    reason="Known gap, reported: a resumed run rebuilds earlier steps' responses from their stored copy, which "
    "is cut at 64 KiB (and scrubbed), so a reference into a large earlier body no longer resolves after a retry. "
    "Extracted outputs are stored whole and keep working.",
)
def test_reference_into_a_large_earlier_body_still_resolves_after_a_retry(alice_api, acme, local_server):
    local_server.route("/one", json_reply({"items": [{"id": i, "pad": "p" * 100} for i in range(1000)]}))
    local_server.route("/two", [Reply(503), Reply(200)])
    connector = make_connector(
        acme,
        [
            {"name": "one", "url": f"{local_server.url}/one"},
            {
                "name": "two",
                "url": f"{local_server.url}/two",
                "query": {"id": "{{steps.one.response.body.items[0].id}}"},
            },
        ],
    )

    execution = run_to_end(execute(alice_api, connector).json()["id"])

    assert execution.status == Status.SUCCEEDED


def test_extracted_output_of_a_large_earlier_body_resolves_after_a_retry(alice_api, acme, local_server):
    local_server.route("/one", json_reply({"items": [{"id": i, "pad": "p" * 100} for i in range(1000)]}))
    local_server.route("/two", [Reply(503), Reply(200)])
    connector = make_connector(
        acme,
        [
            {"name": "one", "url": f"{local_server.url}/one", "extract": {"first": "items[0].id"}},
            {"name": "two", "url": f"{local_server.url}/two", "query": {"id": "{{steps.one.first}}"}},
        ],
    )

    execution = run_to_end(execute(alice_api, connector).json()["id"])

    assert execution.status == Status.SUCCEEDED
    assert [r.path for r in local_server.requests] == ["/one", "/two?id=0", "/two?id=0"]
