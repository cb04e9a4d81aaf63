"""Costs of the integration features, measured in this process against a local PostgreSQL (and Redis):

* accepting a 1000-item batch (`POST /execute-batch` through the Django test client, so the full request:
  parsing, validation of every item, the bulk INSERT, the commit);
* an inbound hook call (`POST /hooks/{token}`): SQL statements and wall time, without and with `webhook-id`;
* `Prefer: wait`: what one waiting request costs its web worker thread (CPU time of the thread while it waits
  for an execution that ends 2 s later, woken by Redis pub/sub) next to the wall time it is held.

Run by hand (never part of the test suite), on a migrated scratch database:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/connectors_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/14
    .venv/bin/python manage.py migrate && .venv/bin/python bench/bench_integrations.py

Nothing is enqueued: `executions.dispatch.enqueue` is replaced by a no-op, so only the accepting side is
measured. The rows it creates are deleted at the end. The machine's load average is printed: figures on a
busy machine are upper bounds.
"""

import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from connectors import services as connector_services  # noqa: E402
from executions import dispatch, waiting  # noqa: E402
from executions.models import Execution, Status  # noqa: E402
from triggers.services import trigger_create  # noqa: E402
from workspaces.models import Membership, User, Workspace  # noqa: E402

STEP = {
    "name": "lookup",
    "method": "GET",
    "url": "https://api.example.com/lookup",
    "query": {"q": "{{input.q}}"},
    "headers": {"Accept": "application/json"},
    "extract": {"id": "id"},
}


def setup():
    suffix = uuid.uuid4().hex[:8]
    workspace = Workspace.objects.create(name=f"bench-{suffix}")
    user = User.objects.create_user(email=f"bench-{suffix}@example.test", password=None)
    Membership.objects.create(user=user, workspace=workspace, role="owner")
    connector = connector_services.connector_create(
        workspace=workspace,
        data={
            "name": "bench",
            "steps": [STEP],
            "input_schema": {"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}},
        },
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return workspace, user, connector, client


def batch_figures(connector, client) -> list[float]:
    url = f"/api/v1/connectors/{connector.id}/execute-batch"
    body = {"items": [{"input": {"q": f"item-{n}"}} for n in range(1000)]}
    client.post(url, body, content_type="application/json")  # warm
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = client.post(url, body, content_type="application/json")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 202, response.content
    return timings


def hook_figures(connector) -> dict:
    trigger, _ = trigger_create(connector=connector, data={"type": "webhook"})
    url = f"/hooks/{trigger.token}"
    client = Client()
    figures = {}
    for label, headers in (("plain", {}), ("webhook-id", {"HTTP_WEBHOOK_ID": None})):
        timings = []
        for n in range(200):
            extra = {"HTTP_WEBHOOK_ID": f"evt-{uuid.uuid4().hex}"} if "HTTP_WEBHOOK_ID" in headers else {}
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.post(url, {"q": f"hook-{n}"}, content_type="application/json", **extra)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 202, response.content
        statements = [q["sql"].split()[0] for q in captured.captured_queries]
        figures[label] = (statistics.median(timings), sorted(timings)[int(len(timings) * 0.95)], statements)
    return figures


def wait_figures(connector) -> tuple[float, float]:
    execution = Execution.objects.create(
        workspace_id=connector.workspace_id,
        connector=connector,
        connector_version=1,
        definition=connector.definition,
        input={"q": "wait"},
    )

    def finish_later():
        time.sleep(2)
        Execution.objects.filter(pk=execution.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
        waiting.notify(str(execution.pk))

    finisher = threading.Thread(target=finish_later)
    finisher.start()
    wall, cpu = time.perf_counter(), time.thread_time()
    ended = waiting.wait_until_ended(execution.pk, 10)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    finisher.join()
    assert ended
    return wall * 1000, cpu * 1000


def main() -> None:
    dispatch.enqueue = lambda *args, **kwargs: None
    workspace, user, connector, client = setup()
    try:
        print(f"load average before: {os.getloadavg()}")
        batch = batch_figures(connector, client)
        print(f"1000-item batch accepted: median {statistics.median(batch):.0f} ms, best {min(batch):.0f} ms")
        for label, (p50, p95, statements) in hook_figures(connector).items():
            print(f"hook call ({label}): p50 {p50:.1f} ms, p95 {p95:.1f} ms, statements {statements}")
        if waiting._redis_url():
            wall, cpu = wait_figures(connector)
            print(f"Prefer: wait held the thread {wall:.0f} ms and used {cpu:.2f} ms of its CPU")
        else:
            print("Prefer: wait not measured: set CELERY_BROKER_URL to a Redis URL")
        print(f"load average after: {os.getloadavg()}")
    finally:
        workspace.delete()
        user.delete()


if __name__ == "__main__":
    main()
