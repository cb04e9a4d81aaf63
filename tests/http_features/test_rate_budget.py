"""The outbound rate budget: reservations (Redis and in-process), the credential API, and a long wait handing
the execution back to the queue."""

import itertools
import os

import pytest
import redis

from connectors.engine.exchange import RateLimitWait
from executions.models import Execution, Status
from executions.ratelimit import UNREACHABLE_RETRY_SECONDS, CredentialRateBudget, LocalLimiter, RedisLimiter
from executions.runtime import process_execution
from tests.executions.helpers import execute, make_connector

REDIS_URL = os.environ.get("CONNECTORS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_limiter():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis unreachable: {error}")
        pytest.skip(f"Redis unreachable: {error}")
    client.flushdb()
    yield RedisLimiter(REDIS_URL)
    client.flushdb()


@pytest.fixture(params=["redis", "local"])
def limiter(request):
    if request.param == "local":
        return LocalLimiter()
    return request.getfixturevalue("redis_limiter")


def test_reservations_are_spaced_by_the_interval(limiter):
    waits = [limiter.reserve("ws:svc", interval=0.5, patience=10) for _ in range(4)]

    assert [granted for granted, _ in waits] == [True] * 4
    assert waits[0][1] == 0
    # Each reservation is one interval after the previous one (less the little time between the calls).
    for (_, earlier), (_, later) in itertools.pairwise(waits):
        assert 0.4 < later - earlier <= 0.5


def test_a_reservation_beyond_the_patience_reserves_nothing(limiter):
    limiter.reserve("ws:svc", interval=5, patience=1)

    granted, wait = limiter.reserve("ws:svc", interval=5, patience=1)
    again, wait_again = limiter.reserve("ws:svc", interval=5, patience=1)

    assert (granted, again) == (False, False)
    assert 4 < wait_again <= wait <= 5  # the refused one did not push the next slot further


def test_budgets_of_other_credentials_and_workspaces_are_independent(limiter):
    limiter.reserve("ws1:svc", interval=60, patience=0)

    assert limiter.reserve("ws1:other", interval=60, patience=0) == (True, 0)
    assert limiter.reserve("ws2:svc", interval=60, patience=0) == (True, 0)


@pytest.mark.parametrize(
    ("rate_limit", "errors"),
    [
        ({"requests": 0, "per_seconds": 1}, ["requests must be an integer from 1 to 100000."]),
        ({"requests": 5, "per_seconds": 0}, ["per_seconds must be an integer from 1 to 86400."]),
        ({"requests": 5}, ['Must be {"requests": N, "per_seconds": S}.']),
        ("5/s", ['Must be {"requests": N, "per_seconds": S}.']),
    ],
)
def test_a_bad_rate_limit_is_a_400(alice_api, rate_limit, errors):
    response = alice_api.post(
        "/api/v1/workspace/credentials",
        {"service_name": "svc", "credentials": {"key": "k-1"}, "rate_limit": rate_limit},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"rate_limit": errors}


def test_the_rate_limit_is_listed(alice_api):
    alice_api.post(
        "/api/v1/workspace/credentials",
        {"service_name": "svc", "credentials": {"key": "k-1"}, "rate_limit": {"requests": 5, "per_seconds": 60}},
        format="json",
    )

    listed = alice_api.get("/api/v1/workspace/credentials").json()["results"][0]
    assert listed["rate_limit"] == {"requests": 5, "per_seconds": 60}


def test_a_long_wait_hands_the_execution_back_to_the_queue_like_a_retry(alice_api, acme, local_server, settings):
    settings.CONNECTORS_RATE_LIMIT_MAX_WAIT_SECONDS = 1
    alice_api.post(
        "/api/v1/workspace/credentials",
        {"service_name": "svc", "credentials": {"key": "k-1"}, "rate_limit": {"requests": 1, "per_seconds": 30}},
        format="json",
    )
    step = {"name": "call", "url": f"{local_server.url}/x", "headers": {"X-Key": "{{workspace.svc.key}}"}}
    connector = make_connector(acme, [step])
    first = execute(alice_api, connector).json()["id"]
    second = execute(alice_api, connector).json()["id"]
    process_execution(first)

    process_execution(second)  # its turn is 30 s away: it waits in the queue, not in the worker

    waiting = Execution.objects.get(pk=second)
    assert waiting.status == Status.QUEUED
    assert waiting.pending_retry["attempts"] == 0
    assert waiting.pending_retry["error"].startswith("waiting ")
    assert waiting.pending_retry["error"].endswith("s for the outbound rate budget")
    assert local_server.hits == 1
    assert 25 < (waiting.run_after - waiting.heartbeat_at).total_seconds() <= 30
    assert Execution.objects.get(pk=first).status == Status.SUCCEEDED


def test_an_unreachable_redis_sends_the_step_back_to_the_queue(acme):
    class Provider:
        def rate_limit(self, service):
            return {"requests": 1, "per_seconds": 1}

    class DownLimiter:
        def reserve(self, key, *, interval, patience):
            raise redis.ConnectionError("down")

    budget = CredentialRateBudget(acme.id, Provider(), DownLimiter())

    with pytest.raises(RateLimitWait) as waiting:
        budget.reserve(["svc"])
    assert waiting.value.delay == UNREACHABLE_RETRY_SECONDS
