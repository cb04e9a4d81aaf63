"""Schedule triggers: cron in a time zone, each due time started exactly once, catch-up starts one run."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from executions.models import Execution
from tests.factories import ConnectorFactory
from triggers import schedules
from triggers.models import Trigger
from triggers.services import trigger_create


@pytest.fixture
def connector(acme):
    return ConnectorFactory(workspace=acme)


def schedule(connector, cron="*/5 * * * *", **extra) -> Trigger:
    trigger, secret = trigger_create(connector=connector, data={"type": "schedule", "cron": cron, **extra})
    assert secret is None
    return trigger


def test_next_due_reads_the_expression_in_the_time_zone():
    after = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before Paris moves to summer time
    first = schedules.next_due("30 9 * * *", "Europe/Paris", after)
    second = schedules.next_due("30 9 * * *", "Europe/Paris", first)
    assert first == datetime(2026, 3, 29, 7, 30, tzinfo=UTC)  # 09:30 CEST
    assert second == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)
    assert schedules.next_due("*/5 * * * *", "UTC", datetime(2026, 1, 1, 0, 3, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 5, tzinfo=UTC
    )


def test_a_due_schedule_starts_one_execution_and_moves_on(connector):
    trigger = schedule(connector, input={"region": "eu"})
    now = timezone.now()
    Trigger.objects.filter(pk=trigger.pk).update(next_run_at=now - timedelta(seconds=5))

    assert schedules.fire_due_schedules(now=now) == 1
    assert schedules.fire_due_schedules(now=now) == 0

    execution = Execution.objects.get()
    assert (execution.triggered_by, execution.input) == ("schedule", {"region": "eu"})
    trigger.refresh_from_db()
    assert trigger.next_run_at == schedules.next_due("*/5 * * * *", "UTC", now)
    assert trigger.last_fired_at == now


def test_missed_due_times_start_once_not_once_each(connector):
    trigger = schedule(connector, cron="* * * * *")
    now = timezone.now()
    Trigger.objects.filter(pk=trigger.pk).update(next_run_at=now - timedelta(hours=6))
    for _ in range(3):
        schedules.fire_due_schedules(now=now)
    assert Execution.objects.count() == 1


def test_a_stale_reader_cannot_start_the_same_due_time_again(connector):
    trigger = schedule(connector)
    now = timezone.now()
    Trigger.objects.filter(pk=trigger.pk).update(next_run_at=now - timedelta(seconds=1))
    stale = Trigger.objects.select_related("connector").get(pk=trigger.pk)
    also_stale = Trigger.objects.select_related("connector").get(pk=trigger.pk)
    assert schedules.fire_schedule(trigger=stale, now=now) is True
    assert schedules.fire_schedule(trigger=also_stale, now=now) is False
    assert Execution.objects.count() == 1


def test_inactive_trigger_or_connector_starts_nothing(connector):
    off = schedule(connector)
    now = timezone.now()
    Trigger.objects.update(next_run_at=now - timedelta(seconds=1))
    Trigger.objects.filter(pk=off.pk).update(is_active=False)
    assert schedules.fire_due_schedules(now=now) == 0
    Trigger.objects.filter(pk=off.pk).update(is_active=True)
    connector.is_active = False
    connector.save()
    assert schedules.fire_due_schedules(now=now) == 0
    assert not Execution.objects.exists()
    off.refresh_from_db()
    assert off.next_run_at > now  # the missed time is dropped, not fired when the connector comes back


def test_input_the_connector_refuses_starts_nothing_and_moves_on(acme):
    connector = ConnectorFactory(workspace=acme, input_schema={"type": "object", "required": ["x"]})
    trigger = schedule(connector)
    now = timezone.now()
    Trigger.objects.update(next_run_at=now - timedelta(seconds=1))
    assert schedules.fire_due_schedules(now=now) == 0
    trigger.refresh_from_db()
    assert trigger.next_run_at > now
    assert not Execution.objects.exists()


def test_time_zone_names_are_checked():
    with pytest.raises(schedules.InvalidSchedule):
        schedules.parse_timezone("Nowhere/Land")
    assert schedules.parse_timezone("America/New_York") == zoneinfo.ZoneInfo("America/New_York")
