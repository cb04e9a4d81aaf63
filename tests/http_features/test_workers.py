"""OAuth2 and the outbound rate budget across two real Celery worker processes over a real Redis broker.

Two workers (`--pool=threads --concurrency=8` each) run against the pytest-django test database, as in
tests/executions/test_celery_worker.py; executions are started through the execute API, so they travel
through `transaction.on_commit` -> Redis exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection as django_connection

from config.celery import app as celery_app
from executions.models import Execution, Status
from tests.conftest import client_for
from tests.executions.helpers import execute, json_reply, make_connector
from tests.executions.test_celery_worker import (
    REDIS_URL,
    ROOT,
    Worker,
    _database_url,
    _forget_broker_connections,
    _redis_or_skip,
    _wait_until_ready,
    wait_for,
)
from tests.oauth_server import OAuthServer

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_SECRET = "cs-worker-test-secret"
# Redis reserves the rate budget's starts on its wall clock, the target stamps arrivals on this process's monotonic
# one: the same machine's, apart by at most a clock adjustment's slewing over the test's seconds.
CLOCK_SLACK = 0.01


@pytest.fixture
def two_workers(transactional_db, settings) -> Iterator[list[Worker]]:
    if django_connection.vendor != "postgresql":
        pytest.skip("the worker processes reach the test database through DATABASE_URL (PostgreSQL)")
    broker = _redis_or_skip()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "DATABASE_URL": _database_url(),
        "CONNECTORS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    workers = []
    for _ in range(2):
        log = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
        command = [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "config",
            "worker",
            "--pool=threads",
            "--concurrency=8",
            "-Q",
            "celery",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        workers.append(Worker(process, log))
    original_broker = celery_app.conf.broker_url
    try:
        for worker in workers:
            _wait_until_ready(worker)
        settings.CELERY_BROKER_URL = REDIS_URL
        celery_app.conf.broker_url = REDIS_URL
        yield workers
    finally:
        for worker in workers:
            worker.process.terminate()
        for worker in workers:
            try:
                worker.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(timeout=10)
        _forget_broker_connections()
        celery_app.conf.broker_url = original_broker
        broker.flushdb()
        broker.close()
        for worker in workers:
            worker.log.unlink(missing_ok=True)


def none_left(connector) -> bool:
    return not Execution.objects.filter(connector=connector, status__in=(Status.QUEUED, Status.RUNNING)).exists()


def run_all(api, connector, count: int, workers: list[Worker], timeout: float = 120.0) -> None:
    for n in range(count):
        assert execute(api, connector, {"n": n}).status_code == 202
    wait_for(lambda: none_left(connector), worker=workers[0], timeout=timeout, what=f"{count} executions")


def test_concurrent_executions_share_one_token_and_spend_each_refresh_token_once(two_workers, alice, acme):
    with OAuthServer(client_id="cid", client_secret=CLIENT_SECRET, token_delay=0.3) as oauth:
        oauth.protect("/api/me", {"name": "acme"})
        oauth.add_refresh_token("rt-0")
        api = client_for(alice, acme)
        fields = {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET}
        response = api.post(
            "/api/v1/workspace/credentials",
            {
                "service_name": "provider",
                "type": "oauth2_refresh_token",
                "credentials": {**fields, "refresh_token": "rt-0"},
            },
            format="json",
        )
        assert response.status_code == 201
        step = {"name": "me", "url": f"{oauth.url}/api/me", "auth": {"type": "oauth2", "credential": "provider"}}
        connector = make_connector(acme, [step])

        run_all(api, connector, 16, two_workers)
        oauth.expire_access_tokens()  # every execution of the next round gets a 401 with the cached token
        run_all(api, connector, 32, two_workers)

        statuses = set(Execution.objects.filter(connector=connector).values_list("status", flat=True))
        assert statuses == {Status.SUCCEEDED}
        assert [form["refresh_token"] for form in oauth.token_requests] == ["rt-0", "rt-1"]
        assert oauth.reused_refresh_tokens == []
        assert {token for token, status in oauth.api_calls if status == 200} == {"at-1", "at-2"}


def test_the_rate_budget_spaces_requests_of_thirty_two_executions_on_two_workers(two_workers, alice, acme):
    arrivals: list[float] = []
    with OAuthServer(client_id="unused", client_secret="unused") as target:
        server = target.server

        def record(request):
            arrivals.append(time.monotonic())
            return json_reply({"ok": True})

        server.route("/limited", record)
        api = client_for(alice, acme)
        response = api.post(
            "/api/v1/workspace/credentials",
            {
                "service_name": "slowapi",
                "credentials": {"key": "k-limited"},
                "rate_limit": {"requests": 4, "per_seconds": 1},
            },
            format="json",
        )
        assert response.status_code == 201
        step = {
            "name": "call",
            "url": f"{server.url}/limited",
            "query": {"n": "{{input.n}}"},
            "headers": {"X-Key": "{{workspace.slowapi.key}}"},
        }
        connector = make_connector(acme, [step])

        submitted = time.monotonic()
        run_all(api, connector, 32, two_workers, timeout=180)

    assert set(Execution.objects.filter(connector=connector).values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert len(arrivals) == 32
    arrivals.sort()
    # No more than 4 requests start in any second, spaced, not in bursts: the k-th request's start is reserved
    # k * 0.25 s after the first one's, which comes after `submitted`. Load can only delay a request after its
    # reserved start, never advance it, so this bound holds on a loaded machine (gaps between arrivals do not: one
    # request delayed 0.5 s arrives together with the next two). Bursts of 4 would break it at the second request;
    # 5 a second by the last, which would arrive 1.5 s early.
    for k, arrival in enumerate(arrivals):
        assert arrival - submitted >= k * 0.25 - CLOCK_SLACK, f"request {k} arrived {arrival - submitted:.3f} s in"
    # Some executions waited longer than CONNECTORS_RATE_LIMIT_MAX_WAIT_SECONDS: they went back to the queue.
    assert Execution.objects.filter(connector=connector, attempts__gt=1).exists()
