"""`POST /hooks/{token}`: an inbound webhook starts an execution.

Kept cheap: one lookup (trigger and connector by token), the execution's INSERT through the same service the
execute endpoint uses (input validation, idempotency, and so the concurrency cap and quotas), and one enqueue
after commit. A `webhook-id` adds the idempotency lookup: the same id within 24 hours answers the first
execution (the same id with another body: 422). `last_fired_at` is written at most once a second.
"""

import json
from datetime import timedelta
from typing import NoReturn

from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from core.exceptions import DomainError
from core.parsers import MAX_JSON_DEPTH, depth_exceeds
from credentials import signing_secrets
from executions import services as execution_services
from executions.models import Execution
from triggers.models import Trigger, TriggerType
from usage.services import quota_refusals

LAST_FIRED_RESOLUTION = timedelta(seconds=1)


class HookNotFound(DomainError):
    status_code = 404
    code = "not_found"


class BadSignature(DomainError):
    status_code = 401
    code = "invalid_signature"


def find_hook(token: str) -> Trigger:
    trigger = (
        Trigger.objects.select_related("connector")
        .filter(token=token, type=TriggerType.WEBHOOK, is_active=True)
        .first()
    )
    if trigger is None:
        raise HookNotFound("No active webhook trigger has this URL.")
    return trigger


def _reject(value: str) -> NoReturn:
    raise ValueError(f"{value} is not valid JSON")


def parse_body(body: bytes) -> object:
    """The JSON body (an empty body is `{}`); raises DomainError (400) for anything that is not JSON."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body, parse_constant=_reject)
    except (ValueError, RecursionError):
        raise DomainError("The body must be JSON.", code="parse_error") from None
    if depth_exceeds(value, MAX_JSON_DEPTH):
        raise DomainError(f"The body is nested deeper than {MAX_JSON_DEPTH} levels.", code="parse_error")
    return value


def verify(trigger: Trigger, body: bytes, headers: dict[str, str]) -> None:
    """Raises BadSignature unless the Standard Webhooks headers sign `body` with the trigger's secret within
    the 5-minute window (constant-time comparison)."""
    secret = signing_secrets.unseal(trigger.signing_secret, owner_kind="trigger", owner_id=trigger.pk)
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as error:
        raise BadSignature(f"Signature check failed: {error}.") from None


def hook_receive(*, token: str, body: bytes, headers: dict[str, str]) -> tuple[Execution, bool]:
    """Starts the trigger's execution; returns (execution, created). created is False for a repeated
    `webhook-id`. Raises HookNotFound (404), BadSignature (401), DomainError (400) for a non-JSON body,
    Conflict (409) for an inactive connector, InvalidInput (400) for input the connector refuses."""
    trigger = find_hook(token)
    if trigger.require_signature:
        verify(trigger, body, headers)
    data = parse_body(body)
    input = {**trigger.input, **data} if isinstance(data, dict) else {**trigger.input, "body": data}
    webhook_id = headers.get("webhook-id", "").strip()
    if len(webhook_id) > 200:
        raise DomainError("webhook-id is longer than 200 characters.", code="invalid_webhook_id")
    with quota_refusals(), transaction.atomic():
        execution, created = execution_services.execution_request(
            connector=trigger.connector,
            input=input,
            triggered_by="webhook",
            idempotency_key=f"webhook:{trigger.pk}:{webhook_id}" if webhook_id else None,
        )
        now = timezone.now()
        if created and (trigger.last_fired_at is None or trigger.last_fired_at < now - LAST_FIRED_RESOLUTION):
            Trigger.objects.filter(pk=trigger.pk).update(last_fired_at=now)
    return execution, created
