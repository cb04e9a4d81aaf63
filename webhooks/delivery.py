"""Sending one attempt of a webhook delivery, and scheduling the next one.

An attempt is claimed with a conditional UPDATE (pending, due, and `next_attempt_at` pushed out by a lease),
so a duplicate message or the sweeper never sends the same attempt twice at once; a worker that dies
mid-attempt leaves the lease to expire and the sweeper to enqueue it again. Every attempt goes through the
engine's SSRF-safe client with the same address policy as steps (CONNECTORS_ALLOWED_PRIVATE_HOSTS); a refused
address is never contacted and fails the delivery at once. A non-2xx answer, a timeout (10 s) or a
connection error is retried after the next wait of CONNECTORS_WEBHOOK_RETRY_WAITS, as a countdown message:
no worker waits.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from standardwebhooks import Webhook

from connectors.engine.http import (
    AddressPolicy,
    BlockedDestination,
    HttpError,
    OutboundRequest,
    OutboundResponse,
    SafeHttpClient,
)
from credentials import signing_secrets
from executions import selectors as execution_selectors
from executions.models import Execution
from executions.serializers import ExecutionSerializer
from webhooks import dispatch
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import encode

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
LEASE = timedelta(seconds=TIMEOUT_SECONDS * 6)
MAX_ERROR_CHARS = 500


def retry_waits() -> list[int]:
    """Seconds to wait before the 2nd, 3rd ... attempt; their number + 1 is the number of attempts."""
    return list(settings.CONNECTORS_WEBHOOK_RETRY_WAITS)


def attempt_delivery(delivery_id: uuid.UUID | str) -> str | None:
    """Sends the next attempt of a pending, due delivery; returns its status afterwards, or None when there
    was nothing to do (not pending, not due, or claimed by someone else)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now + timedelta(seconds=1)
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if not delivery.body:
        payload = _payload(delivery, now)
        if payload is None:
            return _record(delivery, now, status=DeliveryStatus.FAILED, error="The execution no longer exists.")
        delivery.body = encode(payload)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(body=delivery.body)
    try:
        response = _send(delivery, delivery.body.encode(), now)
    except BlockedDestination as error:
        return _record(delivery, now, status=DeliveryStatus.FAILED, error=str(error))
    except HttpError as error:
        return _retry_or_fail(delivery, now, code=None, error=str(error))
    if 200 <= response.status_code < 300:
        return _record(delivery, now, status=DeliveryStatus.SUCCEEDED, code=response.status_code)
    return _retry_or_fail(delivery, now, code=response.status_code, error=f"HTTP {response.status_code}")


def _payload(delivery: WebhookDelivery, now: datetime) -> dict | None:
    if delivery.execution_id is None:
        return None
    execution = execution_selectors.with_steps(Execution.objects.filter(pk=delivery.execution_id)).first()
    if execution is None:
        return None
    return {"type": delivery.event, "timestamp": now.isoformat(), "data": ExecutionSerializer(execution).data}


def _send(delivery: WebhookDelivery, body: bytes, now: datetime) -> OutboundResponse:
    endpoint = delivery.endpoint
    secret = signing_secrets.unseal(endpoint.secret, owner_kind="webhook-endpoint", owner_id=endpoint.pk)
    moment = datetime.fromtimestamp(int(now.timestamp()), tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.message_id, moment, body),
    }
    client = SafeHttpClient(
        AddressPolicy.from_setting(settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS),
        user_agent=settings.CONNECTORS_USER_AGENT,
        max_response_bytes=1024 * 1024,
    )
    try:
        request = OutboundRequest(method="POST", url=endpoint.url, headers=headers, body=body, timeout=TIMEOUT_SECONDS)
        return client.send(request)
    finally:
        client.close()


def _retry_or_fail(delivery: WebhookDelivery, now: datetime, *, code: int | None, error: str) -> str:
    waits = retry_waits()
    if delivery.attempts > len(waits):
        return _record(delivery, now, status=DeliveryStatus.FAILED, code=code, error=error)
    wait = waits[delivery.attempts - 1]
    _record(delivery, now, status=DeliveryStatus.PENDING, code=code, error=error, next_at=now + timedelta(seconds=wait))
    dispatch.enqueue(delivery.pk, delay=wait)
    return DeliveryStatus.PENDING


def _record(
    delivery: WebhookDelivery,
    now: datetime,
    *,
    status: str,
    code: int | None = None,
    error: str = "",
    next_at: datetime | None = None,
) -> str:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status, response_status_code=code, last_error=error[:MAX_ERROR_CHARS], next_attempt_at=next_at
    )
    if status != DeliveryStatus.SUCCEEDED:
        logger.info("Webhook delivery %s attempt %s: %s", delivery.pk, delivery.attempts, error[:MAX_ERROR_CHARS])
    return status


def sweep_pending(*, stale_after: int = 60) -> int:
    """Enqueues pending deliveries whose attempt is overdue by `stale_after` seconds (a lost message, a dead
    worker's lease); the claim settles duplicates. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    overdue = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:1000]
    )
    for delivery_id in overdue:
        dispatch.enqueue(delivery_id)
    return len(overdue)
