"""Cron schedules: validation, next due time in a time zone, and the beat tick that starts due runs.

Exactly once per due time: a due trigger is claimed by moving its `next_run_at` from the value that was read
to the next due time after now, in a conditional UPDATE (the same idea as the execution claim). Of any number
of beat processes or workers that see the same due trigger, one UPDATE matches; the others change nothing.
Because the next due time is computed from now, a trigger whose due times passed while nothing ran starts
once, not once per missed time. The execution also carries an idempotency key made of the trigger and the
due time, so even a claim bypassed by hand cannot start a due time twice.
"""

import logging
import zoneinfo
from datetime import datetime

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from core.exceptions import DomainError
from executions import services as execution_services
from triggers.models import Trigger, TriggerType
from usage.services import count_starts_at_insert

logger = logging.getLogger(__name__)

MAX_PER_TICK = 500


class InvalidSchedule(ValueError):
    pass


def parse_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidSchedule(f"Unknown time zone {name!r}; use an IANA name such as Europe/Paris.") from None


def check_cron(expression: str) -> None:
    """Raises InvalidSchedule unless `expression` is a valid five-field cron expression."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidSchedule("Must be a five-field cron expression, such as '*/5 * * * *'.")


def next_due(expression: str, timezone_name: str, after: datetime) -> datetime:
    """The first due time strictly after `after`, in UTC, with the expression read in the given time zone."""
    local = after.astimezone(parse_timezone(timezone_name))
    following = croniter(expression, local).get_next(datetime)
    return following.astimezone(zoneinfo.ZoneInfo("UTC"))


def fire_due_schedules(*, now: datetime | None = None) -> int:
    """Starts one execution per due schedule trigger; returns how many started. Safe to run anywhere, any
    number of times, concurrently."""
    now = now or timezone.now()
    due = (
        Trigger.objects.filter(type=TriggerType.SCHEDULE, is_active=True, next_run_at__lte=now)
        .select_related("connector")
        .order_by("next_run_at")[:MAX_PER_TICK]
    )
    return sum(fire_schedule(trigger=trigger, now=now) for trigger in list(due))


@transaction.atomic
def fire_schedule(*, trigger: Trigger, now: datetime) -> bool:
    """Claims this due time of `trigger` and starts its execution; False when another process claimed it,
    or when it starts nothing (inactive connector, input the connector refuses: logged)."""
    due_at = trigger.next_run_at
    if due_at is None:
        return False
    following = next_due(trigger.cron, trigger.timezone, now)
    claimed = Trigger.objects.filter(pk=trigger.pk, is_active=True, next_run_at=due_at).update(next_run_at=following)
    if not claimed:
        return False
    if not trigger.connector.is_active:
        return False
    count_starts_at_insert()  # a refused start must roll back its savepoint only: the due time still moves on
    try:
        with transaction.atomic():
            execution_services.execution_request(
                connector=trigger.connector,
                input=dict(trigger.input),
                triggered_by="schedule",
                idempotency_key=f"schedule:{trigger.pk}:{due_at.isoformat()}",
            )
    except DomainError as error:
        logger.warning("Schedule trigger %s started nothing: %s", trigger.pk, error.message)
        return False
    Trigger.objects.filter(pk=trigger.pk).update(last_fired_at=now)
    return True
