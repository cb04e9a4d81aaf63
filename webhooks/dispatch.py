"""Hands a delivery id to whatever sends deliveries: Celery with a broker, else a small thread pool in this
process (embedded mode), running the same code. Waits between attempts are countdowns, never a sleep."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def enqueue(delivery_id, *, delay: float = 0.0) -> None:
    """Asks for an attempt of the delivery after `delay` seconds. An unreachable broker is logged: the
    delivery stays pending and the sweeper (beat) enqueues it again."""
    delay = min(max(delay, 0.0), settings.CELERY_VISIBILITY_TIMEOUT_SECONDS - 60)
    if settings.CELERY_BROKER_URL:
        from webhooks.tasks import deliver_webhook

        try:
            deliver_webhook.apply_async(args=[str(delivery_id)], countdown=delay or None)
        except (BrokerUnavailable, OSError):
            logger.warning("Broker unreachable: webhook delivery %s stays pending for the sweeper", delivery_id)
    elif delay:
        timer = threading.Timer(delay, _submit, args=[delivery_id])
        timer.daemon = True
        timer.start()
    else:
        _submit(delivery_id)


def _submit(delivery_id) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="embedded-webhook")
    _pool.submit(_run_embedded, str(delivery_id))


def _run_embedded(delivery_id: str) -> None:
    from webhooks.delivery import attempt_delivery

    try:
        attempt_delivery(delivery_id)
    except Exception:
        logger.exception("Embedded webhook delivery %s failed unexpectedly", delivery_id)
    finally:
        connections.close_all()
