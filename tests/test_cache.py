"""core.cache.RedisCache: Django's Redis cache (throttle counters), with one client per connection pool."""

import os

import pytest
import redis

from core.cache import RedisCache

REDIS_URL = os.environ.get("CONNECTORS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def cache():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable ({error})", pytrace=False)
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({error})")
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": "test-core-cache"})
    yield cache
    cache.delete_many(["history", "once"])


def test_reads_and_writes_go_through_one_client(cache):
    cache.set("history", [1.5, 2.5], 60)

    assert cache.get("history") == [1.5, 2.5]
    assert cache.add("once", 1, 60) is True
    assert cache.add("once", 2, 60) is False
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=False)
