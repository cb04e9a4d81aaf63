"""After a batch commits: one broker message, whose task enqueues each execution (batches.tasks); in embedded
mode the executions go straight to the in-process pool."""

import logging

from django.conf import settings
from kombu.exceptions import OperationalError as BrokerUnavailable

from executions import dispatch as execution_dispatch
from executions.models import Execution, Status

logger = logging.getLogger(__name__)


def start(batch_id, *, max_duration: int) -> None:
    if settings.CELERY_BROKER_URL:
        from batches.tasks import start_batch

        try:
            start_batch.apply_async(args=[str(batch_id), max_duration])
            return
        except (BrokerUnavailable, OSError):
            logger.warning("Broker unreachable: batch %s stays queued for the sweeper", batch_id)
            return
    enqueue_executions(batch_id, max_duration=max_duration)


def enqueue_executions(batch_id, *, max_duration: int) -> int:
    ids = list(Execution.objects.filter(batch_id=batch_id, status=Status.QUEUED).values_list("pk", flat=True))
    for execution_id in ids:
        execution_dispatch.enqueue(execution_id, max_duration=max_duration)
    return len(ids)
