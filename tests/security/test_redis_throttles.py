"""core.throttling with Redis as the cache: the same sliding window as DRF's, one Lua round trip per request."""

from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.test.utils import override_settings
from rest_framework.throttling import BaseThrottle

from core import throttling
from tests.conftest import client_for

CONNECTORS = "/api/v1/connectors"


@pytest.fixture
def redis_cache(redis_url):
    backend = {"BACKEND": "core.cache.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": "test-throttles"}
    with override_settings(CACHES={"default": backend}):
        cache.clear()
        yield cache
        cache.clear()


@pytest.fixture
def script_calls(monkeypatch):
    calls = []
    real = throttling._script

    def counting():
        script = real()

        def call(**kwargs):
            calls.append(kwargs["keys"])
            return script(**kwargs)

        return call if script is not None else None

    monkeypatch.setattr(throttling, "_script", counting)
    return calls


def test_the_user_rate_is_enforced_in_redis_with_retry_after(redis_cache, rates, alice, acme):
    rates(user="3/min")
    client = client_for(alice, acme)

    statuses = [client.get(CONNECTORS).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = client.get(CONNECTORS)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"]


def test_every_throttle_of_a_request_is_one_round_trip(redis_cache, script_calls, alice, acme):
    client = client_for(alice, acme)
    connector = client.post(
        CONNECTORS,
        {"name": "echo", "steps": [{"name": "get", "url": "https://api.example.com/items"}]},
        format="json",
    ).json()
    script_calls.clear()

    client.post(f"{CONNECTORS}/{connector['id']}/execute", {"input": {}}, format="json")

    assert len(script_calls) == 1
    assert len(script_calls[0]) == 2  # the user's budget and the workspace's execute budget


def test_the_execute_budget_is_the_workspaces(redis_cache, rates, alice, acme):
    from tests.factories import MembershipFactory, UserFactory

    rates(execute="2/min")
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme)
    alice_client, carol_client = client_for(alice, acme), client_for(carol, acme)
    connector = alice_client.post(
        CONNECTORS,
        {"name": "echo", "steps": [{"name": "get", "url": "https://api.example.com/items"}]},
        format="json",
    ).json()
    execute = f"{CONNECTORS}/{connector['id']}/execute"

    statuses = [c.post(execute, {"input": {}}, format="json").status_code for c in (alice_client, carol_client)]
    statuses.append(carol_client.post(execute, {"input": {}}, format="json").status_code)

    assert statuses == [202, 202, 429]


def test_a_refused_request_is_not_counted(redis_cache, rates, alice, acme):
    rates(user="2/min")
    client = client_for(alice, acme)
    [client.get(CONNECTORS) for _ in range(5)]

    key = cache.make_key(f"rl:throttle_user_{alice.pk}")
    assert cache._cache.get_client().zcard(key) == 2


def test_a_throttle_of_another_kind_still_decides_for_itself(redis_cache, alice, acme):
    class NeverThrottle(BaseThrottle):
        def allow_request(self, request, view):
            return False

        def wait(self):
            return 7

    view = SimpleNamespace()
    request = SimpleNamespace(user=alice, workspace=acme)

    assert throttling.check_throttles([NeverThrottle()], request, view) == [False]
