"""One worker process holds hundreds of executions in flight over a few database connections.

A real `celery -A config worker` (the settings' pool, executions.worker_pool.ThreadPool, 200 threads) with a
database pool of DATABASE_POOL_MAX_SIZE=4 runs 200 executions whose target holds every request until 200 of
them are waiting at once. So they can only finish if the one process has all 200 in flight together, each
without a database connection of its own while it waits; the target records the peak, PostgreSQL the
connections the worker opened. Then every execution succeeds, and the counters count each exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app
from connectors.models import Connector
from executions import dispatch, services
from executions.models import Execution, Status
from tests.executions.helpers import json_reply, make_connector
from tests.executions.test_celery_worker import (
    REDIS_URL,
    ROOT,
    Worker,
    _database_url,
    _delete_queue,
    _forget_broker_connections,
    _redis_or_skip,
    _wait_until_ready,
)
from tests.local_server import RecordedRequest, Reply

pytestmark = pytest.mark.django_db(transaction=True)

IN_FLIGHT = 200
WORKER_POOL_SIZE = 4
APPLICATION_NAME = f"pool-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def big_worker(transactional_db, settings) -> Iterator[Worker]:
    if connection.vendor != "postgresql":
        pytest.skip("the worker process reaches the test database through DATABASE_URL (PostgreSQL)")
    broker = _redis_or_skip()
    queue = f"connectors-test-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "DATABASE_URL": f"{_database_url()}?application_name={APPLICATION_NAME}",
        "DATABASE_POOL_MAX_SIZE": str(WORKER_POOL_SIZE),
        "CONNECTORS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "CONNECTORS_WORKSPACE_CONCURRENCY": str(IN_FLIGHT),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_WORKER_POOL", None)
    env.pop("CELERY_WORKER_CONCURRENCY", None)
    log = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "config", "worker", "--loglevel=INFO", "--without-gossip", "--without-mingle"),
        f"--hostname=pool-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    worker = Worker(process, log)
    original_broker, original_queue = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    try:
        _wait_until_ready(worker)
        settings.CELERY_BROKER_URL = REDIS_URL
        celery_app.conf.broker_url = REDIS_URL
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = queue
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _forget_broker_connections()
        celery_app.conf.broker_url = original_broker
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = original_queue
        _delete_queue(broker, queue)
        broker.close()
        log.unlink(missing_ok=True)


class HoldUntilAll:
    """A target that answers no request until `count` of them are waiting at once (then all of them)."""

    def __init__(self, count: int) -> None:
        self.barrier = threading.Barrier(count)
        self.lock = threading.Lock()
        self.waiting = 0
        self.peak = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.waiting += 1
            self.peak = max(self.peak, self.waiting)
        try:
            self.barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            return Reply(500, body=b"not all in flight together")
        finally:
            with self.lock:
                self.waiting -= 1
        return json_reply({"ok": True, "value": 42})


def worker_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APPLICATION_NAME])
        return cursor.fetchone()[0]


def test_one_worker_process_holds_two_hundred_executions_in_flight_over_four_connections(
    big_worker, acme, local_server
):
    target = HoldUntilAll(IN_FLIGHT)
    local_server.route("/slow", target)
    connector = make_connector(
        acme, [{"name": "slow", "url": f"{local_server.url}/slow?n={{{{input.n}}}}", "timeout_seconds": 120}]
    )
    executions = [
        services.execution_create(connector=connector, input={"n": n}, enqueue=False) for n in range(IN_FLIGHT)
    ]
    for execution in executions:
        dispatch.enqueue(execution.id)

    peak_connections = 0
    give_up = time.monotonic() + 180
    while Execution.objects.filter(connector=connector).exclude(status__in=("succeeded", "failed")).exists():
        assert big_worker.process.poll() is None, big_worker.output()
        assert time.monotonic() < give_up, f"not finished; peak in flight {target.peak}\n{big_worker.output()[-3000:]}"
        peak_connections = max(peak_connections, worker_connections())
        time.sleep(0.2)

    assert target.peak == IN_FLIGHT
    statuses = list(Execution.objects.filter(connector=connector).values_list("status", flat=True))
    assert statuses == [Status.SUCCEEDED] * IN_FLIGHT
    assert 0 < peak_connections <= WORKER_POOL_SIZE
    connector = Connector.objects.get(pk=connector.pk)
    assert (connector.total_executions, connector.successful_executions) == (IN_FLIGHT, IN_FLIGHT)
    assert "Connection pool is full" not in big_worker.output()
