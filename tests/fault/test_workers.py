"""Killed workers, stopped workers, a flushed broker, duplicate deliveries, a broker down at submission, cancel:
real Celery workers (the recommended pool, executions.worker_pool.ThreadPool, unless a test names prefork) on a
Redis of the test's own, against the test database.

Each connector has two steps that call the local target with the execution's number, so the target's
request log says exactly how many times each step of each execution was sent.
"""

import signal
import time

import pytest

from connectors.models import Connector
from executions import lifecycle, services
from executions.models import ConnectorDailyStats, Execution, ExecutionStep, Status
from executions.tasks import run_execution
from tests.executions.helpers import execute, make_connector
from tests.fault.conftest import record_figures, sent, wait_until
from tests.local_server import Reply

pytestmark = [pytest.mark.fault, pytest.mark.timeout(60)]


@pytest.fixture
def connector(acme, target):
    return make_connector(
        acme,
        [
            {"name": "one", "url": f"{target.url}/one?n={{{{input.n}}}}", "retry": {"max_attempts": 1}},
            {"name": "two", "url": f"{target.url}/two?n={{{{input.n}}}}", "retry": {"max_attempts": 1}},
        ],
        max_duration_seconds=60,
    )


def submit(connector, n: int, *, enqueue: bool = True) -> Execution:
    return services.execution_create(connector=connector, input={"n": n}, enqueue=enqueue)


def status_of(execution) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=execution.pk)


def finished(*executions) -> bool:
    return not Execution.objects.filter(pk__in=[e.pk for e in executions], status__in=("queued", "running")).exists()


def counters(connector) -> tuple[int, int, int]:
    connector = Connector.objects.get(pk=connector.pk)
    return connector.total_executions, connector.successful_executions, connector.failed_executions


def requeue_until(count: int, *, stale_after: int, timeout: float = 15) -> None:
    """Runs the sweeper (as beat would) until it has requeued `count` executions in all."""
    requeued = 0

    def sweep() -> bool:
        nonlocal requeued
        requeued += lifecycle.requeue_stuck(stale_after=stale_after)
        return requeued >= count

    wait_until(sweep, timeout=timeout, what=f"the sweeper to requeue {count} execution(s)", interval=0.5)
    assert requeued == count


def test_killed_worker_mid_step_is_resumed_by_another_without_resending_the_checkpointed_step(
    cluster, connector, target
):
    target.route("/two", [Reply(delay=30), Reply()])  # the first worker dies while this one is in flight
    first = cluster.worker("first")
    execution = submit(connector, 1)
    wait_until(lambda: sent(target)["/two?n=1"], timeout=20, what="step two to be sent")
    assert ExecutionStep.objects.filter(execution=execution, index=0, status="succeeded").exists()

    first.signal(signal.SIGKILL, group=True)
    first.wait(timeout=10)
    cluster.worker("second")
    requeue_until(1, stale_after=2)
    wait_until(lambda: finished(execution), timeout=20, what="the execution to finish")

    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert (execution.attempts, execution.requeue_count) == (2, 1)
    assert sent(target) == {"/one?n=1": 1, "/two?n=1": 2}  # step two was in flight: at-least-once
    assert list(execution.step_records.values_list("name", "status")) == [("one", "succeeded"), ("two", "succeeded")]
    assert counters(connector) == (1, 1, 0)
    assert ConnectorDailyStats.objects.get(connector=connector).succeeded == 1
    record_figures(submitted=1, completed=1, lost=0, checkpointed_twice=0, in_flight_twice=1)


def test_thread_pool_worker_stopped_with_sigterm_checkpoints_its_step_and_hands_the_run_back(
    cluster, connector, target
):
    target.route("/one", Reply(delay=2))
    first = cluster.worker("first")
    execution = submit(connector, 2)
    wait_until(lambda: sent(target)["/one?n=2"], timeout=20, what="step one to be sent")

    first.signal(signal.SIGTERM)  # Celery warm shutdown
    assert first.wait(timeout=20) == 0

    execution.refresh_from_db()
    assert (execution.status, execution.worker) == (Status.QUEUED, "")
    assert list(execution.step_records.values_list("name", "status")) == [("one", "succeeded")]
    assert "handed back to the queue: this worker is shutting down" in first.log

    cluster.worker("second")
    wait_until(lambda: finished(execution), timeout=20, what="the execution to finish")
    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert sent(target) == {"/one?n=2": 1, "/two?n=2": 1}
    assert counters(connector) == (1, 1, 0)
    record_figures(submitted=1, completed=1, lost=0, checkpointed_twice=0)


def test_prefork_worker_stopped_with_sigterm_finishes_its_execution_first(cluster, connector, target):
    target.route("/one", Reply(delay=2))
    worker = cluster.worker("worker", pool="prefork")
    execution = submit(connector, 7)
    wait_until(lambda: sent(target)["/one?n=7"], timeout=20, what="step one to be sent")

    worker.signal(signal.SIGTERM)  # warm shutdown: the pool child finishes the task it runs
    assert worker.wait(timeout=30) == 0

    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert sent(target) == {"/one?n=7": 1, "/two?n=7": 1}
    record_figures(submitted=1, completed=1, lost=0, checkpointed_twice=0)


def test_flushed_broker_loses_no_execution(cluster, connector, target, redis_server):
    executions = [submit(connector, n) for n in range(10)]  # enqueued on commit, no worker yet
    redis_server.client().flushall()

    cluster.worker("worker")
    time.sleep(1)
    assert Execution.objects.filter(status=Status.QUEUED).count() == 10  # their messages are gone

    time.sleep(1)  # let run_after become older than the stale window
    requeue_until(10, stale_after=1)
    wait_until(lambda: finished(*executions), timeout=30, what="all 10 executions to finish")

    assert Execution.objects.filter(status=Status.SUCCEEDED).count() == 10
    expected = {f"/{step}?n={n}": 1 for n in range(10) for step in ("one", "two")}
    assert sent(target) == expected
    assert counters(connector) == (10, 10, 0)
    record_figures(submitted=10, completed=10, lost=0, checkpointed_twice=0)


def test_same_task_delivered_twice_runs_once(cluster, connector, target, redis_server):
    target.route("/one", Reply(delay=1))  # both deliveries arrive while the first is still running
    cluster.worker("worker", concurrency=4)
    execution = submit(connector, 3, enqueue=False)
    broker = redis_server.client()

    run_execution.apply_async(args=[str(execution.id)])
    run_execution.apply_async(args=[str(execution.id)])
    wait_until(lambda: finished(execution), timeout=20, what="the execution to finish")
    run_execution.apply_async(args=[str(execution.id)])  # a late redelivery of a finished execution
    wait_until(  # neither queued nor unacknowledged: the worker took and acknowledged all three
        lambda: broker.llen("celery") == 0 and broker.hlen("unacked") == 0,
        timeout=20,
        what="the worker to handle all three deliveries",
    )

    execution.refresh_from_db()
    assert (execution.status, execution.attempts) == (Status.SUCCEEDED, 1)
    assert sent(target) == {"/one?n=3": 1, "/two?n=3": 1}
    assert counters(connector) == (1, 1, 0)
    record_figures(submitted=1, completed=1, lost=0, checkpointed_twice=0)


def test_execution_submitted_while_the_broker_is_down_runs_once_it_is_back(
    cluster, connector, target, redis_server, alice_api
):
    redis_server.stop()

    response = execute(alice_api, connector, {"n": 4})

    assert response.status_code == 202
    execution = Execution.objects.get(pk=response.json()["id"])
    assert execution.status == Status.QUEUED
    redis_server.start()
    cluster.worker("worker")
    time.sleep(1)
    requeue_until(1, stale_after=1)
    wait_until(lambda: finished(execution), timeout=20, what="the execution to finish")
    assert status_of(execution) == Status.SUCCEEDED
    assert sent(target) == {"/one?n=4": 1, "/two?n=4": 1}
    record_figures(submitted=1, completed=1, lost=0, checkpointed_twice=0)


def test_cancel_stops_a_running_execution_before_its_next_step(cluster, connector, target, alice_api):
    target.route("/one", Reply(delay=2))
    cluster.worker("worker")
    execution = submit(connector, 5)
    wait_until(lambda: sent(target)["/one?n=5"], timeout=20, what="step one to be sent")

    response = alice_api.post(f"/api/v1/executions/{execution.id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    wait_until(
        lambda: Execution.objects.filter(pk=execution.pk, worker="").exists(),
        timeout=20,
        what="the worker to stop the run",
    )
    time.sleep(0.5)
    assert sent(target) == {"/one?n=5": 1}  # step two never sent
    execution.refresh_from_db()
    assert execution.status == Status.CANCELLED
    assert list(execution.step_records.values_list("name", flat=True)) == ["one"]
    assert counters(connector) == (1, 0, 0)
    assert alice_api.post(f"/api/v1/executions/{execution.id}/cancel").status_code == 409


def test_beat_runs_the_sweeper_that_recovers_a_lost_message(cluster, connector, target):
    execution = submit(connector, 6, enqueue=False)  # as if its message had been lost
    cluster.worker("worker")
    cluster.beat(interval=5)

    wait_until(lambda: finished(execution), timeout=30, what="beat's sweeper to requeue the execution")

    assert status_of(execution) == Status.SUCCEEDED
    assert sent(target) == {"/one?n=6": 1, "/two?n=6": 1}
    record_figures(submitted=1, completed=1, lost=0, checkpointed_twice=0)
