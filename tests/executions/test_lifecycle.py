"""The execution lifecycle in the database: claim, fencing, sweeper, cancel, counters, retention.

These drive executions/lifecycle.py directly (and executions/runtime.py where a step must really be sent);
the fault tests in tests/fault/ do the same with real workers, a real broker and a real PostgreSQL outage.
"""

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from connectors.engine.runner import PendingRetry, StepRecord
from connectors.models import Connector
from core.exceptions import Conflict
from executions import dispatch, heartbeat, lifecycle, runtime, services
from executions.models import ConnectorDailyStats, Execution, ExecutionStep, Status
from executions.tasks import run_execution
from tests.executions.helpers import make_connector
from tests.local_server import Reply

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


@pytest.fixture
def connector(acme, local_server):
    return make_connector(
        acme,
        [
            {"name": "one", "url": f"{local_server.url}/one", "extract": {"token": "token"}},
            {"name": "two", "url": f"{local_server.url}/two?token={{{{steps.one.token}}}}"},
        ],
    )


def _queued(connector):
    return services.execution_create(connector=connector, input={}, enqueue=False)


@pytest.fixture
def queued(connector):
    return _queued(connector)


def _age(execution, **fields) -> None:
    """Moves the given timestamps of the execution an hour into the past."""
    Execution.objects.filter(pk=execution.pk).update(**{name: timezone.now() - LONG_AGO for name in fields})


def _record(index: int, name: str, status: str = "succeeded", **fields) -> StepRecord:
    return StepRecord(index=index, name=name, status=status, attempts=1, request={"method": "GET"}, **fields)


def _counters(connector) -> tuple[int, int, int]:
    connector = Connector.objects.get(pk=connector.pk)
    return connector.total_executions, connector.successful_executions, connector.failed_executions


# --- claim ---


def test_second_claim_of_the_same_execution_gets_none(queued):
    first = lifecycle.claim(queued.id)

    assert first.status == Status.RUNNING
    assert lifecycle.claim(queued.id) is None
    assert Execution.objects.get(pk=queued.pk).attempts == 1


def test_each_claim_writes_its_own_token(queued):
    first = lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)
    lifecycle.requeue_stuck(stale_after=60)
    second = lifecycle.claim(queued.id)

    assert first.worker
    assert second.worker
    assert first.worker != second.worker


def test_claim_of_a_cancelled_execution_gets_none(queued):
    services.execution_cancel(execution=queued)

    assert lifecycle.claim(queued.id) is None


def test_duplicate_task_delivery_runs_the_execution_once(queued, local_server):
    local_server.route("/one", Reply(body=b'{"token": "t1"}', headers={"Content-Type": "application/json"}))

    run_execution(str(queued.id))
    run_execution(str(queued.id))

    assert Execution.objects.get(pk=queued.pk).status == Status.SUCCEEDED
    assert [r.path for r in local_server.requests] == ["/one", "/two?token=t1"]


# --- fencing: a worker whose run was taken away writes nothing ---


def test_stale_claim_cannot_checkpoint_after_the_run_was_requeued(queued):
    stale = lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)
    lifecycle.requeue_stuck(stale_after=60)
    lifecycle.claim(queued.id)

    with pytest.raises(lifecycle.LostClaim):
        lifecycle.checkpoint_step(stale, _record(0, "one"))
    assert not ExecutionStep.objects.filter(execution=queued).exists()


def test_stale_claim_cannot_finish_or_schedule_a_retry(queued, connector):
    stale = lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)
    lifecycle.requeue_stuck(stale_after=60)
    current = lifecycle.claim(queued.id)
    retry = PendingRetry(index=0, attempts=1, delay=1.0, error="HTTP 503", started_at=None)

    assert lifecycle.schedule_retry(stale, retry) is False
    assert lifecycle.finish(stale, status=Status.FAILED, output={}, error="x", notes=[]) is False
    assert lifecycle.finish(current, status=Status.SUCCEEDED, output={}, error=None, notes=[]) is True
    assert Execution.objects.get(pk=queued.pk).status == Status.SUCCEEDED
    assert _counters(connector) == (1, 1, 0)


def test_heartbeat_renews_only_the_owning_claim(queued):
    stale = lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)
    lifecycle.requeue_stuck(stale_after=60)
    current = lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)

    assert lifecycle.heartbeat_runs([stale]) == 0
    assert Execution.objects.get(pk=queued.pk).heartbeat_at < timezone.now() - timedelta(minutes=59)
    assert lifecycle.heartbeat_runs([current]) == 1
    assert Execution.objects.get(pk=queued.pk).heartbeat_at > timezone.now() - timedelta(minutes=1)


@pytest.fixture
def process():
    """A process's heartbeats of the test's own. Its runs are forgotten after the test: its thread, which outlives
    the test, would otherwise renew them every interval in whatever test runs then, without database access."""
    process = heartbeat.Heartbeats()
    yield process
    for execution in Execution.objects.all():
        process.discard(execution)
    assert len(process) == 0


def test_one_heartbeat_statement_renews_every_run_of_the_process(process, connector, django_assert_num_queries):
    runs = [lifecycle.claim(_queued(connector).id) for _ in range(3)]
    Execution.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    for run in runs:
        process.add(run, until=time.monotonic() + 600)
    process.add(runs[0], until=time.monotonic() + 600)  # the same run twice is one run

    with django_assert_num_queries(1):
        assert process.beat() == 3

    assert Execution.objects.filter(heartbeat_at__gt=timezone.now() - timedelta(minutes=1)).count() == 3


def test_a_run_past_its_deadline_or_gone_is_no_longer_renewed(process, connector):
    hung, gone, live = (lifecycle.claim(_queued(connector).id) for _ in range(3))
    Execution.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    process.add(hung, until=time.monotonic() - 1)
    process.add(gone, until=time.monotonic() + 600)
    process.add(live, until=time.monotonic() + 600)
    process.discard(gone)

    assert process.beat() == 1

    assert len(process) == 1
    renewed = Execution.objects.filter(heartbeat_at__gt=timezone.now() - timedelta(minutes=1))
    assert list(renewed.values_list("pk", flat=True)) == [live.id]


# --- resume: a checkpointed step is never sent again ---


def test_resumed_execution_starts_at_its_first_unfinished_step(queued, local_server):
    crashed = lifecycle.claim(queued.id)
    one = _record(0, "one", extracted={"token": "t1"}, response={"status_code": 200, "headers": {}, "body": {}})
    lifecycle.checkpoint_step(crashed, one)
    _age(queued, heartbeat_at=True)  # the worker died while sending step two
    lifecycle.requeue_stuck(stale_after=60)

    runtime.process_execution(queued.id)

    execution = Execution.objects.get(pk=queued.pk)
    assert execution.status == Status.SUCCEEDED
    assert [r.path for r in local_server.requests] == ["/two?token=t1"]
    assert execution.attempts == 2
    assert execution.requeue_count == 1


def test_a_worker_shutting_down_hands_the_run_back_before_its_next_step(queued, local_server):
    runtime.request_shutdown()
    try:
        runtime.process_execution(queued.id)
    finally:
        runtime._shutting_down.clear()

    execution = Execution.objects.get(pk=queued.pk)
    assert execution.status == Status.QUEUED
    assert execution.worker == ""
    assert local_server.requests == []


# --- sweeper ---


def test_requeue_moves_a_running_execution_with_a_stale_heartbeat(queued, django_capture_on_commit_callbacks):
    lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)

    with django_capture_on_commit_callbacks() as enqueued:
        assert lifecycle.requeue_stuck(stale_after=60) == 1

    execution = Execution.objects.get(pk=queued.pk)
    assert (execution.status, execution.worker, execution.requeue_count) == (Status.QUEUED, "", 1)
    assert len(enqueued) == 1


def test_requeue_enqueues_a_stale_queued_execution_without_counting_it(queued, django_capture_on_commit_callbacks):
    _age(queued, run_after=True)  # its broker message was lost

    with django_capture_on_commit_callbacks() as enqueued:
        assert lifecycle.requeue_stuck(stale_after=60) == 1

    execution = Execution.objects.get(pk=queued.pk)
    assert (execution.status, execution.requeue_count) == (Status.QUEUED, 0)
    assert execution.run_after > timezone.now() - timedelta(minutes=1)
    assert len(enqueued) == 1


def test_requeue_leaves_fresh_waiting_and_finished_executions_alone(connector, django_capture_on_commit_callbacks):
    fresh_queued = services.execution_create(connector=connector, input={}, enqueue=False)
    fresh_running = services.execution_create(connector=connector, input={}, enqueue=False)
    lifecycle.claim(fresh_running.id)
    waiting_retry = services.execution_create(connector=connector, input={}, enqueue=False)
    Execution.objects.filter(pk=waiting_retry.pk).update(run_after=timezone.now() + timedelta(minutes=5))
    old_finished = services.execution_create(connector=connector, input={}, enqueue=False)
    Execution.objects.filter(pk=old_finished.pk).update(
        status=Status.SUCCEEDED, run_after=timezone.now() - LONG_AGO, heartbeat_at=timezone.now() - LONG_AGO
    )

    with django_capture_on_commit_callbacks() as enqueued:
        assert lifecycle.requeue_stuck(stale_after=60) == 0

    assert enqueued == []
    statuses = dict(Execution.objects.values_list("pk", "status"))
    assert statuses == {
        fresh_queued.pk: Status.QUEUED,
        fresh_running.pk: Status.RUNNING,
        waiting_retry.pk: Status.QUEUED,
        old_finished.pk: Status.SUCCEEDED,
    }


def test_a_second_sweep_does_not_requeue_again(queued):
    lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)

    assert lifecycle.requeue_stuck(stale_after=60) == 1
    assert lifecycle.requeue_stuck(stale_after=60) == 0
    assert Execution.objects.get(pk=queued.pk).requeue_count == 1


def test_execution_requeued_max_times_ends_failed_with_a_message(queued, connector):
    Execution.objects.filter(pk=queued.pk).update(requeue_count=lifecycle.MAX_REQUEUES)
    lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)

    assert lifecycle.requeue_stuck(stale_after=60) == 0

    execution = Execution.objects.get(pk=queued.pk)
    assert execution.status == Status.FAILED
    assert execution.error == (
        f"Abandoned: the execution was requeued {lifecycle.MAX_REQUEUES} times (its worker stopped each time) "
        "without finishing; it is not retried again."
    )
    assert execution.finished_at is not None
    assert _counters(connector) == (1, 0, 1)


def test_requeue_command_prints_how_many(queued):
    lifecycle.claim(queued.id)
    _age(queued, heartbeat_at=True)
    out = StringIO()

    call_command("requeue_stuck_executions", "--stale-after", "60", stdout=out)

    assert out.getvalue() == "Requeued 1 execution(s).\n"


def test_requeue_command_defaults_to_the_stale_setting(monkeypatch, settings):
    settings.CONNECTORS_REQUEUE_STALE_AFTER_SECONDS = 77
    seen = []
    monkeypatch.setattr(lifecycle, "requeue_stuck", lambda *, stale_after: seen.append(stale_after) or 0)

    call_command("requeue_stuck_executions", stdout=StringIO())

    assert seen == [77]


def test_beat_schedule_names_a_registered_task():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["requeue-stuck-executions"]
    assert entry["task"] == "executions.tasks.requeue_stuck_executions"
    assert entry["task"] in app.tasks
    assert entry["schedule"] == 60
    assert entry["kwargs"] == {"stale_after": settings.CONNECTORS_REQUEUE_STALE_AFTER_SECONDS}


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweepers_requeue_a_stuck_execution_once(acme, local_server, monkeypatch):
    enqueued: list = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kwargs: enqueued.append(execution_id))
    connector = make_connector(acme, [{"name": "one", "url": f"{local_server.url}/one"}])
    execution = services.execution_create(connector=connector, input={}, enqueue=False)
    lifecycle.claim(execution.id)
    _age(execution, heartbeat_at=True)
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def sweep() -> None:
        try:
            barrier.wait(timeout=5)
            counts.append(lifecycle.requeue_stuck(stale_after=60))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(counts) == [0, 0, 0, 1]
    assert enqueued == [execution.id]
    assert Execution.objects.get(pk=execution.pk).requeue_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_execution_let_exactly_one_win(acme, local_server):
    connector = make_connector(acme, [{"name": "one", "url": f"{local_server.url}/one"}])
    execution = services.execution_create(connector=connector, input={}, enqueue=False)
    claims: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        try:
            barrier.wait(timeout=5)
            claims.append(lifecycle.claim(execution.id) is not None)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(claims) == [False, False, False, True]


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_in_one_workspace_never_exceed_its_cap(acme, local_server, settings, monkeypatch):
    settings.CONNECTORS_WORKSPACE_CONCURRENCY = 2
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kwargs: None)
    connector = make_connector(acme, [{"name": "one", "url": f"{local_server.url}/one"}])
    executions = [services.execution_create(connector=connector, input={}, enqueue=False) for _ in range(6)]
    claims: list[bool] = []
    barrier = threading.Barrier(len(executions))

    def claim(execution) -> None:
        try:
            barrier.wait(timeout=5)
            claims.append(lifecycle.claim(execution.id) is not None)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(execution,)) for execution in executions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(claims) == [False, False, False, False, True, True]
    assert Execution.objects.filter(workspace=acme, status=Status.RUNNING).count() == 2


# --- counters ---


def test_counters_are_exact_under_a_duplicate_finish(queued, connector):
    claimed = lifecycle.claim(queued.id)

    first = lifecycle.finish(claimed, status=Status.SUCCEEDED, output={}, error=None, notes=[])
    second = lifecycle.finish(claimed, status=Status.SUCCEEDED, output={}, error=None, notes=[])

    assert (first, second) == (True, False)
    assert _counters(connector) == (1, 1, 0)
    day = ConnectorDailyStats.objects.get(connector=connector)
    assert (day.succeeded, day.failed) == (1, 0)


# --- cancel ---


def test_cancel_of_a_running_execution_is_immediate_and_stops_its_run(queued, connector):
    claimed = lifecycle.claim(queued.id)

    cancelled = services.execution_cancel(execution=Execution.objects.get(pk=queued.pk))

    assert cancelled.status == Status.CANCELLED
    assert cancelled.error == "Cancelled on request."
    # The step in flight is still recorded (its request was sent), and the checkpoint says to stop there.
    assert lifecycle.checkpoint_step(claimed, _record(0, "one")) is False
    retry = PendingRetry(index=1, attempts=1, delay=1.0, error="HTTP 503", started_at=None)
    assert lifecycle.schedule_retry(claimed, retry) is False
    assert lifecycle.finish(claimed, status=Status.SUCCEEDED, output={}, error=None, notes=[]) is False
    assert Execution.objects.get(pk=queued.pk).status == Status.CANCELLED
    assert list(ExecutionStep.objects.filter(execution=queued).values_list("name", flat=True)) == ["one"]
    assert _counters(connector) == (1, 0, 0)


def test_cancel_of_a_finished_execution_is_a_conflict(queued, connector):
    claimed = lifecycle.claim(queued.id)
    lifecycle.finish(claimed, status=Status.SUCCEEDED, output={}, error=None, notes=[])

    with pytest.raises(Conflict):
        services.execution_cancel(execution=queued)
    assert _counters(connector) == (1, 1, 0)


# --- retention ---


def test_prune_deletes_old_finished_executions_and_keeps_the_rest(connector):
    def make(status: str, age: timedelta) -> Execution:
        execution = services.execution_create(connector=connector, input={}, enqueue=False)
        Execution.objects.filter(pk=execution.pk).update(status=status, created_at=timezone.now() - age)
        return execution

    make(Status.SUCCEEDED, timedelta(days=40))
    old_failed = make(Status.FAILED, timedelta(days=40))
    ExecutionStep.objects.create(execution=old_failed, index=0, name="one", status="failed")
    old_queued = make(Status.QUEUED, timedelta(days=40))
    old_running = make(Status.RUNNING, timedelta(days=40))
    recent = make(Status.SUCCEEDED, timedelta(days=2))
    out = StringIO()

    call_command("prune_executions", "--older-than", "30", "--batch-size", "1", stdout=out, stderr=StringIO())

    remaining = set(Execution.objects.values_list("pk", flat=True))
    assert remaining == {old_queued.pk, old_running.pk, recent.pk}
    assert not ExecutionStep.objects.filter(execution_id=old_failed.pk).exists()
    assert out.getvalue().startswith("Deleted 2 execution(s) created before ")


def test_prune_keeps_the_counters(connector):
    execution = services.execution_create(connector=connector, input={}, enqueue=False)
    claimed = lifecycle.claim(execution.id)
    lifecycle.finish(claimed, status=Status.SUCCEEDED, output={}, error=None, notes=[])
    Execution.objects.filter(pk=execution.pk).update(created_at=timezone.now() - timedelta(days=40))

    call_command("prune_executions", "--older-than", "30", stdout=StringIO(), stderr=StringIO())

    assert not Execution.objects.exists()
    assert _counters(connector) == (1, 1, 0)
