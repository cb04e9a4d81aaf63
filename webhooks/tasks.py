"""Celery tasks of outbound webhooks: thin, taking ids."""

from celery import shared_task

from webhooks import delivery


@shared_task(ignore_result=True, acks_late=True)
def deliver_webhook(delivery_id: str) -> None:
    """One attempt of a delivery; a duplicate message finds it claimed or not yet due and does nothing."""
    delivery.attempt_delivery(delivery_id)


@shared_task(ignore_result=True)
def sweep_webhook_deliveries() -> int:
    """Run by beat every minute: re-enqueues overdue pending deliveries."""
    return delivery.sweep_pending()
