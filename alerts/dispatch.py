"""Enqueues the digest check: a Celery task with a broker, otherwise a timer thread of this process."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connections
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)


def enqueue_digest(workspace_id: Any, *, delay: float = 0.0) -> None:
    # Below the broker's visibility timeout, so a waiting message is not delivered twice; a check that comes
    # early simply schedules itself again.
    delay = min(max(delay, 0.0), settings.CELERY_VISIBILITY_TIMEOUT_SECONDS - 60)
    if settings.CELERY_BROKER_URL:
        from alerts.tasks import deliver_failure_digest

        try:
            deliver_failure_digest.apply_async(args=[str(workspace_id)], countdown=delay or None)
        except (BrokerUnavailable, OSError):
            logger.warning("Broker unreachable: failure alert check for workspace %s not enqueued", workspace_id)
        return
    timer = threading.Timer(delay, _run_embedded, args=[str(workspace_id)])
    timer.daemon = True
    timer.start()


def _run_embedded(workspace_id: str) -> None:
    from alerts.services import deliver_failure_digest

    try:
        deliver_failure_digest(workspace_id=workspace_id)
    except Exception:
        logger.exception("Failure alert for workspace %s could not be sent", workspace_id)
    finally:
        connections.close_all()
