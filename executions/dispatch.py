"""Hands an execution id to whatever runs executions: Celery when a broker is configured, otherwise a
thread pool inside this process (the embedded mode) running the very same code.

In a web request, the broker message is sent once the response has been written (`request_finished`, which
the WSGI server sends when it closes the response), not before: the client waits for its 202 only for what
the answer needs, the committed row. Sending it costs a Redis round trip and the thread's GIL and CPU waits
around it: 11-28 % of the execute call's p95 with 8 clients on loaded cores (docs/performance.md,
"Thirteenth pass"). A process that dies in between leaves the row queued, as an unreachable broker does,
and the sweeper enqueues it (docs/reliability.md). A request that waits for its execution (`Prefer: wait`)
sends it first (`send_deferred`).

It imports nothing of the execution lifecycle: the Celery task is sent by name, and the embedded runner is
registered by `ExecutionsConfig.ready()`, so `services -> dispatch` does not lead back to them.
"""

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from kombu.exceptions import OperationalError as BrokerUnavailable

from config import broker
from config.celery import app as celery_app
from connectors.engine.spec import MAX_DURATION_SECONDS

logger = logging.getLogger(__name__)

TIME_LIMIT_MARGIN_SECONDS = 30

RUN_EXECUTION_TASK = "executions.tasks.run_execution"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_embedded_runner: Callable[[str], object] | None = None
# The current web request's broker messages, sent after its response; None outside a request (workers, beat,
# commands), whose messages are sent at once.
_request = threading.local()
_unclosed_reported = False


def register_embedded_runner(runner: Callable[[str], object]) -> None:
    """What runs an execution id in embedded mode (`executions.runtime.process_execution`)."""
    global _embedded_runner
    _embedded_runner = runner


def enqueue(execution_id, *, delay: float = 0.0, max_duration: int = MAX_DURATION_SECONDS) -> None:
    """Asks for the execution to be processed after `delay` seconds.

    Retry delays stay below the broker's visibility timeout (settings.CELERY_VISIBILITY_TIMEOUT_SECONDS), so a
    delayed message is never redelivered while it waits. An unreachable broker is logged, not raised: the
    execution row is already committed as queued, and the sweeper enqueues it again once its `run_after` is
    stale, so the caller (an API request that already created it) still succeeds.
    """
    delay = min(max(delay, 0.0), settings.CELERY_VISIBILITY_TIMEOUT_SECONDS - 60)
    if settings.CELERY_BROKER_URL:
        limits = {
            "soft_time_limit": max_duration + TIME_LIMIT_MARGIN_SECONDS,
            "time_limit": max_duration + 2 * TIME_LIMIT_MARGIN_SECONDS,
        }
        deferred = getattr(_request, "deferred", None)
        if deferred is not None and not delay:
            deferred.append((execution_id, limits))
        else:
            _send(execution_id, delay, limits)
    elif delay:
        timer = threading.Timer(delay, _submit, args=[execution_id])
        timer.daemon = True
        timer.start()
    else:
        _submit(execution_id)


def _send(execution_id: object, delay: float, limits: dict[str, int]) -> None:
    try:
        if delay:
            celery_app.send_task(RUN_EXECUTION_TASK, args=[str(execution_id)], countdown=delay, **limits)
        else:
            broker.send_now(celery_app, RUN_EXECUTION_TASK, [str(execution_id)], **limits)  # the hot path
    except (BrokerUnavailable, OSError, *_broker_errors()):
        logger.warning("Broker unreachable: execution %s stays queued for the sweeper", execution_id)


def defer_until_answered(**kwargs: object) -> None:
    """`request_started`: this thread's messages wait for the response. Any left by a request whose response
    was never closed are sent first, late; the first time, a warning says so, as the server is at fault."""
    global _unclosed_reported
    if getattr(_request, "deferred", None) and not _unclosed_reported:
        _unclosed_reported = True
        logger.warning(
            "A response was never closed, so its executions reached the broker only with the next request: "
            "serve the app with a WSGI server that calls close() on responses (PEP 3333), such as gunicorn"
        )
    send_deferred()
    _request.deferred = []


def send_when_answered(**kwargs: object) -> None:
    """`request_finished`: the response has been written; its messages go now, and later ones at once."""
    send_deferred()
    _request.deferred = None


def send_deferred() -> None:
    """Sends the messages this thread's request has deferred so far; those it defers later wait as well."""
    deferred = getattr(_request, "deferred", None)
    if not deferred:
        return
    _request.deferred = []
    for execution_id, limits in deferred:
        try:
            _send(execution_id, 0.0, limits)
        except Exception:  # after the response, nobody else would hear of it; the sweeper enqueues the row
            logger.exception("Sending execution %s to the broker failed; it stays queued for the sweeper", execution_id)


@functools.cache
def _broker_errors() -> tuple[type[BaseException], ...]:
    """What the broker's transport raises when it cannot be reached (redis-py's errors, for Redis)."""
    with celery_app.connection_for_write() as connection:
        return tuple(connection.connection_errors) + tuple(connection.channel_errors)


def _submit(execution_id) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.CONNECTORS_EMBEDDED_WORKERS, thread_name_prefix="embedded-execution"
            )
    _pool.submit(_run_embedded, str(execution_id))


def _run_embedded(execution_id: str) -> None:
    try:
        if _embedded_runner is None:
            raise RuntimeError("No embedded runner: ExecutionsConfig.ready() registers it")
        _embedded_runner(execution_id)
    except Exception:
        logger.exception("Embedded execution %s failed unexpectedly", execution_id)
    finally:
        # The pool's threads live on; they must not keep database sessions open between executions.
        connections.close_all()
