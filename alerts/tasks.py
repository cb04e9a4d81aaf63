"""Celery task: thin, takes an id, calls the service."""

from smtplib import SMTPException

from celery import shared_task

from alerts import services


@shared_task(
    ignore_result=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
)
def deliver_failure_digest(workspace_id: str) -> bool:
    return services.deliver_failure_digest(workspace_id=workspace_id)
