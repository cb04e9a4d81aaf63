"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from executions import services
from executions.runtime import process_execution


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
    """Claims the execution and runs it; a duplicate delivery finds it claimed and does nothing."""
    process_execution(execution_id)


@shared_task(ignore_result=True)
def requeue_stuck_executions(stale_after: int = 300) -> int:
    return services.requeue_stuck(stale_after=stale_after)
