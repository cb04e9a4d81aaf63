"""core.cache.RedisCache: Django's Redis cache (throttle counters), with one client per connection pool."""

import pytest

from core.cache import RedisCache


@pytest.fixture
def cache(redis_url):
    cache = RedisCache(redis_url, {"KEY_PREFIX": "test-core-cache"})
    yield cache
    cache.delete_many(["history", "once"])


def test_reads_and_writes_go_through_one_client(cache):
    cache.set("history", [1.5, 2.5], 60)

    assert cache.get("history") == [1.5, 2.5]
    assert cache.add("once", 1, 60) is True
    assert cache.add("once", 2, 60) is False
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=False)
