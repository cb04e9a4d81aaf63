"""The broker's hot path: kombu's Redis transport reusing one Redis client per channel (settings:
CELERY_BROKER_TRANSPORT), and `send_now`, which publishes a task to run at once for a quarter of Celery's CPU.

kombu builds a new `redis.Redis` for every publish, every acknowledgement and every prefetch bookkeeping
pipeline, and building one copies redis-py's table of response callbacks: about 0.1 ms each, three times per
execution (the web's publish, the worker's receipt and its acknowledgement; docs/performance.md). A client is
thread-safe (each command takes a connection from the channel's pool), so the channel keeps one, built again
only if the channel replaces its pool.
"""

import contextlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Sequence
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


_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def send_now(app: Any, name: str, args: Sequence[str], *, soft_time_limit: int, time_limit: int) -> None:
    """Publishes task `name` with string `args`, to run as soon as a worker takes it, on the app's default
    queue: the message `app.send_task` would send (Celery's task protocol 2; docs.celeryq.dev, "Message
    Protocol"), built directly. `send_task` spends as much CPU again on routing, declaring the queue on every
    call, the arguments' safe repr and its retry wrapper (docs/performance.md); a publish that fails here
    raises the transport's error at once, for the caller to settle. Tasks with a countdown, or that need
    Celery's routing, use `send_task`."""
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [time_limit, soft_time_limit],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(list(args)),
        "kwargsrepr": "{}",
        "origin": f"gen{os.getpid()}@{socket.gethostname()}",
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body = json.dumps([list(args), {}, _EMBED])
    properties = {"correlation_id": task_id, "delivery_mode": 2}
    channel = _publishing_channel(app)
    try:
        message = channel.prepare_message(body, 0, "application/json", "utf-8", headers, properties)
        channel.basic_publish(message, "", app.conf.task_default_queue)
    except BaseException:
        _drop_publishing_channel(app)
        raise


_publishing = threading.local()


def _publishing_channel(app: Any) -> Any:
    """This thread's channel for publishing through `app`'s broker, kept between calls. Taking a producer from
    Celery's pool and giving it back (`producer_or_acquire`: the pool's lock and queue, reviving the producer)
    cost as much as the publish itself (docs/performance.md). A channel is not shared between threads. Its
    connection is dropped, and the next publish connects again, when a publish fails and when the app's
    connection pool is replaced (Celery replaces it after a fork; so does pointing the app at another broker)."""
    kept = _publishing.__dict__.setdefault("kept", {})
    pool = app.pool
    entry = kept.get(app)
    if entry is None or entry[0] is not pool:
        _drop_publishing_channel(app)
        entry = kept[app] = (pool, app.connection_for_write())
    return entry[1].default_channel


def _drop_publishing_channel(app: Any) -> None:
    entry = getattr(_publishing, "kept", {}).pop(app, None)
    if entry is not None:
        with contextlib.suppress(Exception):  # it failed already; what matters is that it is not used again
            entry[1].release()
