"""Operations seen from outside, on real processes: gunicorn with two workers, a Celery worker and Celery beat,
all with LOG_FORMAT=json, METRICS_TOKEN and one PROMETHEUS_MULTIPROC_DIR, against the test database and a
real Redis broker (CONNECTORS_TEST_REDIS_URL).

- /metrics, whichever gunicorn worker answers, shows the executions the Celery worker finished and the
  requests both gunicorn workers served: counters add up across processes.
- Every line each process writes is a JSON object; the worker's lines about an execution carry its ids.
- Beat applies EXECUTION_RETENTION_DAYS and the connector's statistics stay the same.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework_simplejwt.tokens import RefreshToken

from connectors.models import Connector
from executions.models import Execution, Status
from tests.conftest import client_for
from tests.executions.helpers import json_reply, make_connector
from tests.executions.test_celery_worker import (
    _database_url,
    _delete_queue,
    _forget_broker_connections,
    _redis_or_skip,
)
from tests.local_server import Reply

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "metrics-" + uuid.uuid4().hex
REDIS_URL = os.environ.get("CONNECTORS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

pytestmark = pytest.mark.django_db(transaction=True)


class Process:
    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self) -> list[str]:
        return [line for line in self.output().splitlines() if line.strip()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what: str, processes: list[Process], timeout: float = 90.0):
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        for process in processes:
            if process.process.poll() is not None:
                pytest.fail(f"{process.name} exited with {process.process.returncode}:\n{process.output()[-5000:]}")
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    logs = "\n".join(f"--- {p.name}\n{p.output()[-3000:]}" for p in processes)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


@pytest.fixture
def stack(transactional_db, settings) -> Iterator[dict]:
    if connection.vendor != "postgresql":
        pytest.skip("the processes reach the test database through DATABASE_URL (PostgreSQL)")
    broker = _redis_or_skip()
    metrics_dir = tempfile.mkdtemp(prefix="metrics-")
    port = free_port()
    queue = f"connectors-ops-test-{uuid.uuid4().hex}"  # its own queue: runs sharing one Redis never mix
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "CONNECTORS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "EXECUTION_RETENTION_DAYS": "30",
        "EXECUTION_RETENTION_INTERVAL_SECONDS": "2",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PYTHONUNBUFFERED": "1",
    }
    # --quiet: no start-up banner (it is printed, not logged); every line is then a log record.
    worker_command = [str(BIN / "celery"), "-A", "config", "--quiet", "worker", "--pool=threads"]
    worker_command += ["--concurrency=4", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    worker_command += [f"--hostname=ops-{uuid.uuid4().hex[:8]}@%h"]
    processes = [
        Process("web", [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "config.wsgi:application"], env),
        Process("worker", worker_command, env),
    ]
    try:
        wait_for(lambda: " ready." in processes[1].output(), "the worker", processes)
        wait_for(lambda: _answers(port), "gunicorn", processes)
        yield {
            "url": f"http://127.0.0.1:{port}",
            "processes": processes,
            "env": env,
            "metrics_dir": metrics_dir,
            "queue": queue,
        }
    finally:
        for process in processes:
            process.stop()
        _forget_broker_connections()
        _delete_queue(broker, queue)
        broker.close()


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def parse(process: Process, line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        pytest.fail(f"{process.name} wrote a line that is not JSON: {line!r}")


def test_metrics_json_logs_and_retention_across_real_processes(stack, alice, acme, local_server):
    local_server.route("/ok", json_reply({"ok": True}))
    local_server.route("/missing", Reply(404))
    good = make_connector(acme, [{"name": "get", "url": f"{local_server.url}/ok"}], name="Good")
    bad = make_connector(acme, [{"name": "get", "url": f"{local_server.url}/missing"}], name="Bad")
    url, processes = stack["url"], stack["processes"]
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(alice).access_token}"}

    ids = []
    for connector in [good] * 4 + [bad] * 3:
        response = requests.post(
            f"{url}/api/v1/connectors/{connector.id}/execute", json={"input": {}}, headers=headers, timeout=10
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    wait_for(
        lambda: Execution.objects.filter(pk__in=ids, status__in=(Status.SUCCEEDED, Status.FAILED)).count() == 7,
        "the executions",
        processes,
    )

    # Metrics: the same totals from every answer, whichever gunicorn worker gives it.
    assert requests.get(f"{url}/metrics", timeout=10).status_code == 401
    assert requests.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    # The failures queue an alert digest; the queue is empty again once the worker has taken it.
    depth = ("connectors_queue_depth", (("queue", stack["queue"]),))
    wait_for(lambda: scrape(url)[depth] == 0, "the queue to drain", processes)
    for _ in range(6):
        samples = scrape(url)
        assert samples[("connectors_executions_total", (("status", "succeeded"),))] == 4
        assert samples[("connectors_executions_total", (("status", "failed"),))] == 3
        assert samples[("connectors_http_requests_total", (("status_class", "2xx"),))] == 4
        assert samples[("connectors_http_requests_total", (("status_class", "4xx"),))] == 3
        steps = sum(v for (name, _), v in samples.items() if name == "connectors_step_duration_seconds_count")
        assert steps == 7
        executes = [
            value
            for (name, labels), value in samples.items()
            if name == "connectors_api_request_duration_seconds_count" and dict(labels)["view"] == "connector-execute"
        ]
        assert sum(executes) == 7
        assert samples[("connectors_executions_queued", ())] == 0
        assert samples[("connectors_executions_running", ())] == 0
        assert samples[depth] == 0
    histogram_files = list(Path(stack["metrics_dir"]).glob("histogram_*.db"))
    assert len(histogram_files) >= 3  # two gunicorn workers (request latency) and the Celery worker (steps)

    # JSON logs: every line of every process parses; the worker's lines about an execution carry its ids.
    records = {}
    for process in processes:
        records[process.name] = [parse(process, line) for line in process.lines()]
        for record in records[process.name]:
            assert {"timestamp", "level", "logger", "message"} <= set(record), record
    about = [r for r in records["worker"] if r.get("execution_id") in ids]
    for execution_id in ids:
        messages = [r["message"] for r in about if r["execution_id"] == execution_id]
        assert f"Execution {execution_id} started (claim 1)" in messages
        assert any(m.startswith("Execution finished: ") for m in messages)
        assert {r["workspace_id"] for r in about if r["execution_id"] == execution_id} == {str(acme.id)}
    assert any(r["logger"].startswith("gunicorn") for r in records["web"])
    assert any(r["logger"] == "gunicorn.access" and "/execute" in r["message"] for r in records["web"])

    # Retention by beat: executions older than EXECUTION_RETENTION_DAYS go; the statistics stay.
    api = client_for(alice, acme)
    before = {c.pk: api.get(f"/api/v1/connectors/{c.pk}/stats").json() for c in (good, bad)}
    Execution.objects.filter(pk__in=ids[:5]).update(created_at=timezone.now() - timedelta(days=31))
    beat_schedule = Path(tempfile.mkdtemp(prefix="beat-")) / "schedule"
    beat_command = [str(BIN / "celery"), "-A", "config", "--quiet", "beat", "--loglevel=INFO"]
    beat = Process("beat", [*beat_command, f"--schedule={beat_schedule}"], stack["env"])
    processes.append(beat)
    wait_for(lambda: Execution.objects.filter(pk__in=ids).count() == 2, "beat's retention run", processes)

    assert sorted(map(str, Execution.objects.filter(pk__in=ids).values_list("pk", flat=True))) == sorted(ids[5:])
    after = {c.pk: api.get(f"/api/v1/connectors/{c.pk}/stats").json() for c in (good, bad)}
    assert after == before
    assert Connector.objects.get(pk=good.pk).total_executions == 4
    for line in beat.lines():
        assert {"timestamp", "level", "logger", "message"} <= set(parse(beat, line))
