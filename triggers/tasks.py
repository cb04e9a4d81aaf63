"""Celery tasks of triggers: the beat tick that starts due schedules."""

from celery import shared_task

from triggers import schedules


@shared_task(ignore_result=True)
def fire_due_schedules() -> int:
    """Run by beat every CONNECTORS_SCHEDULE_TICK_SECONDS; any number may run at once (see triggers.schedules)."""
    return schedules.fire_due_schedules()
