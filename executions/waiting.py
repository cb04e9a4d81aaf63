"""`Prefer: wait=N` on execute: the request waits for its execution to end, woken by a notification rather
than by polling the database.

The finish path (executions.events) publishes, after its commit, on a Redis channel named after the
execution (`PUBLISH`, one round trip, whether or not anyone listens). A waiting request subscribes to that
channel first, then reads the execution's status once (so an end that came before the subscription is not
missed), then blocks on the subscription for at most N seconds. In embedded mode (no broker) executions run
in this process and wake waiters through an in-process event. Either way the database is read twice per
waiting request (once before waiting, once for the answer), whatever N is.

A waiting request holds its web worker thread (and one Redis connection) for up to N seconds; see
docs/api.md ("Synchronous wait") for sizing the web tier.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.http.response import HttpResponseBase
from rest_framework.response import Response

from core import pooled
from executions.models import FINISHED_STATUSES, Execution

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "connectors:execution-ended:"
_WAIT_RE = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(-?\d{1,6})\"?(?:$|[,;\s])", re.IGNORECASE)

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_local_waiters: dict[str, list[threading.Event]] = {}
_local_lock = threading.Lock()


@dataclass(frozen=True)
class WaitPreference:
    seconds: int  # as applied: clamped to 1..CONNECTORS_MAX_WAIT_SECONDS


def parse_prefer(header: str) -> WaitPreference | None:
    """The `wait` preference of a `Prefer` header (RFC 7240), clamped to the server's maximum; None when
    there is none, it is not a whole number, or it is below 1 (ignored, as RFC 7240 allows)."""
    match = _WAIT_RE.search(header or "")
    if match is None:
        return None
    seconds = int(match.group(1))
    if seconds < 1:
        return None
    return WaitPreference(min(seconds, settings.CONNECTORS_MAX_WAIT_SECONDS))


def _redis_url() -> str | None:
    url = settings.CELERY_BROKER_URL
    return url if url.startswith(("redis://", "rediss://")) else None


def _client(url: str) -> redis.Redis:
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return _clients[url]


def notify_on_commit(execution_id: object) -> None:
    """Called in the finishing transaction: wakes the execution's waiters once it commits."""
    pooled.on_commit(lambda: notify(str(execution_id)))


def notify(execution_id: str) -> None:
    with _local_lock:
        for event in _local_waiters.get(execution_id, ()):
            event.set()
    url = _redis_url()
    if url is not None:
        try:
            _client(url).publish(CHANNEL_PREFIX + execution_id, b"1")
        except redis.RedisError as error:
            logger.warning("Could not publish the end of execution %s: %s", execution_id, error)


def _has_ended(execution_id: str) -> bool:
    return Execution.objects.filter(pk=execution_id, status__in=FINISHED_STATUSES).exists()


def wait_until_ended(execution_id: object, seconds: float) -> bool:
    """Blocks until the execution has ended or `seconds` pass; returns whether it ended."""
    execution_id = str(execution_id)
    url = _redis_url()
    if url is None:
        return _wait_in_process(execution_id, seconds)
    try:
        pubsub = _client(url).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL_PREFIX + execution_id)
    except redis.RedisError as error:
        logger.warning("Cannot wait for execution %s (Redis: %s); answering at once", execution_id, error)
        return _has_ended(execution_id)
    try:
        if _has_ended(execution_id):
            return True
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if pubsub.get_message(timeout=min(remaining, 5.0)) is not None:
                return True
        return False
    except redis.RedisError as error:
        logger.warning("Lost the wait for execution %s (Redis: %s)", execution_id, error)
        return _has_ended(execution_id)
    finally:
        pubsub.close()


def _wait_in_process(execution_id: str, seconds: float) -> bool:
    event = threading.Event()
    with _local_lock:
        _local_waiters.setdefault(execution_id, []).append(event)
    try:
        return _has_ended(execution_id) or event.wait(seconds)
    finally:
        with _local_lock:
            waiters = _local_waiters.get(execution_id, [])
            if event in waiters:
                waiters.remove(event)
            if not waiters:
                _local_waiters.pop(execution_id, None)


def remember(response: Response, execution_id: object, preference: WaitPreference | None) -> None:
    """Marks an execute response to be answered after the wait (see `answer_after_wait`)."""
    if preference is not None:
        response.wait_for = (execution_id, preference)


def answer_after_wait(response: HttpResponseBase) -> HttpResponseBase:
    """Run by the execute view after its request transaction has committed: sends the execution's broker
    message (which a request otherwise sends after its response), waits, then answers 200 with the ended
    execution or 202 with it as it stands."""
    marked = getattr(response, "wait_for", None)
    if marked is None or not isinstance(response, Response) or response.status_code not in (200, 202):
        return response
    from executions import dispatch, selectors
    from executions.serializers import ExecutionSerializer

    dispatch.send_deferred()

    execution_id, preference = marked
    ended = wait_until_ended(execution_id, preference.seconds)
    execution = selectors.with_steps(Execution.objects.filter(pk=execution_id)).first()
    if execution is not None:
        response.data = ExecutionSerializer(execution).data
        response.status_code = 200 if ended else 202
    response["Preference-Applied"] = f"wait={preference.seconds}"
    return response
