"""Writes of triggers: create, update, delete (one function per write, for the audit log to wrap)."""

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from connectors.models import Connector
from core.exceptions import InvalidInput
from credentials import signing_secrets
from triggers import schedules
from triggers.models import Trigger, TriggerType

TOKEN_BYTES = 32
WEBHOOK_ONLY = ("require_signature",)
SCHEDULE_ONLY = ("cron", "timezone")


def _check_fields(kind: str, data: dict[str, Any]) -> None:
    wrong = SCHEDULE_ONLY if kind == TriggerType.WEBHOOK else WEBHOOK_ONLY
    for name in wrong:
        if name in data:
            raise InvalidInput(f"Not a field of a {kind} trigger.", field=name)


def _schedule_fields(cron: str, timezone_name: str) -> dict[str, Any]:
    try:
        schedules.check_cron(cron)
    except schedules.InvalidSchedule as error:
        raise InvalidInput(str(error), field="cron") from None
    try:
        schedules.parse_timezone(timezone_name)
    except schedules.InvalidSchedule as error:
        raise InvalidInput(str(error), field="timezone") from None
    return {
        "cron": cron,
        "timezone": timezone_name,
        "next_run_at": schedules.next_due(cron, timezone_name, timezone.now()),
    }


@transaction.atomic
def trigger_create(*, connector: Connector, data: dict[str, Any]) -> tuple[Trigger, str | None]:
    """A new trigger and, for a webhook, its signing secret in the clear (returned here only).

    Raises InvalidInput for a field of the other type, a bad cron expression or time zone."""
    kind = data["type"]
    _check_fields(kind, data)
    trigger = Trigger(
        workspace_id=connector.workspace_id,
        connector=connector,
        type=kind,
        is_active=data.get("is_active", True),
        input=data.get("input", {}),
    )
    secret = None
    if kind == TriggerType.WEBHOOK:
        secret = signing_secrets.new_signing_secret()
        trigger.token = secrets.token_urlsafe(TOKEN_BYTES)
        trigger.signing_secret = signing_secrets.seal(secret, owner_kind="trigger", owner_id=trigger.id)
        trigger.require_signature = data.get("require_signature", False)
    else:
        if "cron" not in data:
            raise InvalidInput("This field is required.", field="cron")
        for name, value in _schedule_fields(data["cron"], data.get("timezone", "UTC")).items():
            setattr(trigger, name, value)
    trigger.save()
    audit.record(workspace_id=trigger.workspace_id, action="trigger.created", target=trigger, details={"type": kind})
    return trigger, secret


@transaction.atomic
def trigger_update(*, trigger: Trigger, data: dict[str, Any]) -> Trigger:
    """Changes the given fields; the type never changes. A new cron or time zone recomputes `next_run_at`."""
    if "type" in data and data["type"] != trigger.type:
        raise InvalidInput("A trigger's type cannot change; create a new trigger.", field="type")
    _check_fields(trigger.type, data)
    changes = {name: data[name] for name in ("is_active", "input", "require_signature") if name in data}
    if trigger.type == TriggerType.SCHEDULE and ({"cron", "timezone"} & data.keys() or data.get("is_active")):
        changes |= _schedule_fields(data.get("cron", trigger.cron), data.get("timezone", trigger.timezone))
    for name, value in changes.items():
        setattr(trigger, name, value)
    trigger.save(update_fields=[*changes, "updated_at"])
    audit.record(
        workspace_id=trigger.workspace_id, action="trigger.updated", target=trigger, details={"fields": sorted(changes)}
    )
    return trigger


@transaction.atomic
def trigger_delete(*, trigger: Trigger) -> None:
    audit.record(workspace_id=trigger.workspace_id, action="trigger.deleted", target=trigger)
    trigger.delete()
