"""Executions on a real Celery worker process over a real Redis broker.

The worker (`celery -A config worker --concurrency=8`, on the pool the settings choose:
executions.worker_pool.ThreadPool) runs as a child process against the
pytest-django test database; this process enqueues through the execute API exactly as the web app does
(`transaction.on_commit` -> `dispatch.enqueue` -> Redis). Redis comes from CONNECTORS_TEST_REDIS_URL (default
redis://127.0.0.1:6379/15). The worker and this process use a queue of their own (CELERY_QUEUE), so two
runs sharing one Redis never take each other's messages; only that queue's keys are deleted afterwards.
Without Redis these tests are skipped, except under CI, where they fail.
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
import redis
from django.conf import settings
from django.db import connection
from kombu import pools as kombu_pools

from config.celery import app as celery_app
from connectors.models import Connector
from executions.models import ConnectorDailyStats, Execution, Status
from tests.conftest import client_for
from tests.executions.helpers import execute, json_reply, make_connector
from tests.local_server import Reply

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CONNECTORS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WORKER_START_SECONDS = 60

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        message = f"Redis at {REDIS_URL} is unreachable ({error}); the Celery worker tests need it"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return client


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def celery_worker(transactional_db, settings) -> Iterator[Worker]:
    if connection.vendor != "postgresql":
        pytest.skip("the worker process reaches the test database through DATABASE_URL (PostgreSQL)")
    broker = _redis_or_skip()
    queue = f"connectors-test-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "DATABASE_URL": _database_url(),
        "CONNECTORS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    log = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "config",
        "worker",
        "--concurrency=8",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
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
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _forget_broker_connections()
        celery_app.conf.broker_url = original_broker
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = original_queue
        _delete_queue(broker, queue)
        broker.close()
        log.unlink(missing_ok=True)


def _wait_until_ready(worker: Worker) -> None:
    give_up = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < give_up:
        if worker.process.poll() is not None:
            pytest.fail(f"the Celery worker exited with {worker.process.returncode}:\n{worker.output()}")
        if " ready." in worker.output():
            return
        time.sleep(0.2)
    pytest.fail(f"the Celery worker was not ready within {WORKER_START_SECONDS}s:\n{worker.output()}")


def _delete_queue(broker: redis.Redis, queue: str) -> None:
    """Deletes the keys kombu keeps for `queue` (the list, its priority lists, its binding); nothing else."""
    keys = [*broker.scan_iter(match=f"{queue}*"), f"_kombu.binding.{queue}"]
    broker.delete(*keys)


def _forget_broker_connections() -> None:
    """Drops this process's pooled broker connections, so later tests do not reuse the test broker."""
    kombu_pools.reset()  # closes every pooled connection and empties kombu's registries
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def wait_for(condition, *, worker: Worker, timeout: float = 60.0, what: str = "the executions to finish"):
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker output:\n{worker.output()[-5000:]}")


def finished(execution_id):
    execution = Execution.objects.filter(pk=execution_id).first()
    return execution if execution and execution.status not in (Status.QUEUED, Status.RUNNING) else None


def test_execution_runs_end_to_end_on_the_worker(celery_worker, alice, acme, local_server):
    local_server.route("/lookup", json_reply({"id": 42}))
    connector = make_connector(
        acme,
        [
            {
                "name": "lookup",
                "url": f"{local_server.url}/lookup",
                "query": {"q": "{{input.q}}"},
                "extract": {"id": "id"},
            },
            {"name": "update", "method": "POST", "url": f"{local_server.url}/update/{{{{steps.lookup.id}}}}"},
        ],
    )
    api = client_for(alice, acme)

    response = execute(api, connector, {"q": "ada"})
    assert response.status_code == 202
    wait_for(lambda: finished(response.json()["id"]), worker=celery_worker)

    body = api.get(f"/api/v1/executions/{response.json()['id']}").json()
    assert body["status"] == "succeeded"
    assert body["output"] == {"lookup": {"id": 42}, "update": {}}
    assert body["attempts"] == 1
    assert [(s["name"], s["status"]) for s in body["steps"]] == [("lookup", "succeeded"), ("update", "succeeded")]
    assert [r.path for r in local_server.requests] == ["/lookup?q=ada", "/update/42"]
    # The execution's own lines are the operators' log; Celery's per-task INFO lines are not written.
    wait_for(
        lambda: "Execution finished: succeeded" in celery_worker.output(), worker=celery_worker, what="its end line"
    )
    assert "executions.tasks.run_execution[" not in celery_worker.output()


def test_the_worker_takes_only_messages_of_its_own_queue(celery_worker, alice, acme, local_server):
    local_server.route("/ping", json_reply({}))
    connector = make_connector(acme, [{"name": "ping", "url": f"{local_server.url}/ping"}])
    other_run_queue = f"connectors-test-other-{uuid.uuid4().hex}"
    broker = redis.Redis.from_url(REDIS_URL)
    celery_app.send_task("executions.tasks.run_execution", args=[str(uuid.uuid4())], queue=other_run_queue)

    execution_id = execute(client_for(alice, acme), connector).json()["id"]
    wait_for(lambda: finished(execution_id), worker=celery_worker)

    try:
        assert broker.llen(other_run_queue) == 1
    finally:
        _delete_queue(broker, other_run_queue)
        broker.close()


def test_retry_is_rescheduled_through_the_broker(celery_worker, alice, acme, local_server):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    connector = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])
    api = client_for(alice, acme)

    execution_id = execute(api, connector).json()["id"]
    execution = wait_for(lambda: finished(execution_id), worker=celery_worker)

    assert execution.status == Status.SUCCEEDED
    assert execution.attempts == 2
    assert execution.step_records.get().attempts == 2
    assert local_server.hits == 2


def test_fifty_concurrent_executions_count_exactly_fifty(celery_worker, alice, acme, local_server):
    local_server.route("/work", json_reply({"ok": True}))
    connector = make_connector(
        acme, [{"name": "work", "url": f"{local_server.url}/work", "query": {"n": "{{input.n}}"}}]
    )
    clients = 50
    barrier = threading.Barrier(clients)
    statuses: list[int] = []

    def call(n: int) -> None:
        api = client_for(alice, acme)
        try:
            barrier.wait(timeout=30)
            statuses.append(execute(api, connector, {"n": n}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [202] * clients
    wait_for(
        lambda: not Execution.objects.filter(connector=connector, status__in=(Status.QUEUED, Status.RUNNING)).exists(),
        worker=celery_worker,
        timeout=120,
    )
    connector = Connector.objects.get(pk=connector.pk)
    assert (connector.total_executions, connector.successful_executions, connector.failed_executions) == (50, 50, 0)
    assert Execution.objects.filter(connector=connector, status=Status.SUCCEEDED).count() == 50
    assert ConnectorDailyStats.objects.get(connector=connector).succeeded == 50
    assert sorted(r.path for r in local_server.requests) == sorted(f"/work?n={n}" for n in range(clients))
