"""kombu's Redis transport, reusing one Redis client per channel (settings: CELERY_BROKER_TRANSPORT).

kombu builds a new `redis.Redis` for every publish, every acknowledgement and every prefetch bookkeeping
pipeline, and building one copies redis-py's table of response callbacks: about 0.1 ms each, three times per
execution (the web's publish, the worker's receipt and its acknowledgement; docs/performance.md). A client is
thread-safe (each command takes a connection from the channel's pool), so the channel keeps one, built again
only if the channel replaces its pool.
"""

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
