"""The Redis cache (throttle counters shared across processes), without a new client object per operation.

Django's RedisCache wraps its connection pool in a new `redis.Redis` for every get and set, and building one
copies redis-py's table of response callbacks: about 0.1 ms, four times per API request (two throttles, a
get and a set each). A client is thread-safe (each command takes a connection from the pool), so one client
per pool is kept instead.
"""

from django.core.cache.backends import redis as django_redis


class _OneClientPerPool(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _OneClientPerPool
