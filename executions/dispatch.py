"""Hands an execution id to whatever runs executions: Celery when a broker is configured, otherwise a
thread pool inside this process (the embedded mode: no CELERY_BROKER_URL) running the very same task code."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

TIME_LIMIT_MARGIN_SECONDS = 30
DEFAULT_MAX_DURATION_SECONDS = 900

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def enqueue(execution_id, *, delay: float = 0.0, max_duration: int = DEFAULT_MAX_DURATION_SECONDS) -> None:
    """Asks for the execution to be processed after `delay` seconds.

    Retry delays stay below the broker's visibility timeout (settings.CELERY_VISIBILITY_TIMEOUT_SECONDS), so a
    delayed message is never redelivered while it waits. An unreachable broker is logged, not raised: the
    execution row is already committed as queued, and the sweeper enqueues it again once its `run_after` is
    stale, so the caller (an API request that already created it) still succeeds.
    """
    delay = min(max(delay, 0.0), settings.CELERY_VISIBILITY_TIMEOUT_SECONDS - 60)
    if settings.CELERY_BROKER_URL:
        from executions.tasks import run_execution

        try:
            run_execution.apply_async(
                args=[str(execution_id)],
                countdown=delay or None,
                soft_time_limit=max_duration + TIME_LIMIT_MARGIN_SECONDS,
                time_limit=max_duration + 2 * TIME_LIMIT_MARGIN_SECONDS,
            )
        except (BrokerUnavailable, OSError):
            logger.warning("Broker unreachable: execution %s stays queued for the sweeper", execution_id)
    elif delay:
        timer = threading.Timer(delay, _submit, args=[execution_id])
        timer.daemon = True
        timer.start()
    else:
        _submit(execution_id)


def _submit(execution_id) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.CONNECTORS_EMBEDDED_WORKERS, thread_name_prefix="embedded-execution"
            )
    _pool.submit(_run_embedded, str(execution_id))


def _run_embedded(execution_id: str) -> None:
    from executions.runtime import process_execution

    try:
        process_execution(execution_id, reload=False)
    except Exception:
        logger.exception("Embedded execution %s failed unexpectedly", execution_id)
    finally:
        # The pool's threads live on; they must not keep database sessions open between executions.
        connections.close_all()
