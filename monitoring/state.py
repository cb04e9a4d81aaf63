"""What GET /metrics reads at scrape time: execution states from PostgreSQL, queue lengths from the broker."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from executions.models import Execution, Status


def read() -> dict[str, Any]:
    now = timezone.now()
    active = Execution.objects.filter(status__in=(Status.QUEUED, Status.RUNNING)).order_by()
    figures = active.aggregate(
        queued=Count("pk", filter=Q(status=Status.QUEUED)),
        running=Count("pk", filter=Q(status=Status.RUNNING)),
        retry_scheduled=Count("pk", filter=Q(status=Status.QUEUED, run_after__gt=now)),
        oldest_due=Min("run_after", filter=Q(status=Status.QUEUED, run_after__lte=now)),
    )
    oldest = figures.pop("oldest_due")
    figures["oldest_queued_age"] = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    figures["queues"] = _queue_depths()
    figures["webhook_deliveries_pending"] = _pending_deliveries()
    return figures


def _pending_deliveries() -> int:
    """Outbound webhook deliveries not delivered yet (the partial index on pending deliveries answers it)."""
    from webhooks.models import DeliveryStatus, WebhookDelivery

    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).order_by().count()


def _queue_depths() -> dict[str, int]:
    if not settings.CELERY_BROKER_URL:
        from executions import dispatch

        pool = dispatch._pool
        return {"embedded": pool._work_queue.qsize() if pool is not None else 0}
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return {}
    from config.celery import app

    depths = {}
    with app.connection_for_read() as connection:
        client = connection.default_channel.client
        queue = settings.CELERY_TASK_DEFAULT_QUEUE  # where executions and alert checks are sent
        depths[queue] = int(client.llen(queue))
    return depths
