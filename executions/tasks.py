"""Celery tasks: thin wrappers that take ids and call one service."""

import logging

from celery import shared_task
from celery.signals import worker_shutting_down
from django.conf import settings
from django.db import InterfaceError, OperationalError

from executions import lifecycle, retention, runtime
from executions.runtime import process_execution

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=30,
)
def run_execution(execution_id: str) -> None:
    """Claims the execution and runs it; a duplicate delivery finds it claimed and does nothing.

    Acknowledged only when it returns (acks_late): a message whose worker died is delivered again, and the
    sweeper covers what the broker does not. While the database is unreachable the task is retried with
    backoff (at most 60 s between tries, always below the broker's visibility timeout).
    """
    process_execution(execution_id, reload=False)


@shared_task(ignore_result=True)
def requeue_stuck_executions(stale_after: int | None = None) -> int:
    """The sweeper, run by beat every CONNECTORS_REQUEUE_INTERVAL_SECONDS; safe to run anywhere, concurrently."""
    return lifecycle.requeue_stuck(stale_after=stale_after or settings.CONNECTORS_REQUEUE_STALE_AFTER_SECONDS)


@worker_shutting_down.connect
def _stop_runs_before_their_next_step(**kwargs) -> None:
    """Warm shutdown: executions in this worker process finish the step in flight, checkpoint it and go back
    to the queue (thread and solo pools; prefork children finish their executions, bounded by time limits)."""
    runtime.request_shutdown()


@shared_task(ignore_result=True)
def prune_old_executions() -> int:
    """Daily under beat: applies EXECUTION_RETENTION_DAYS (0 keeps everything)."""
    days = settings.EXECUTION_RETENTION_DAYS
    if days == 0:
        return 0
    deleted = retention.prune_finished(older_than_days=days)
    logger.info("Retention: deleted %s execution(s) older than %s day(s)", deleted, days)
    return deleted
