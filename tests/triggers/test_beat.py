"""Schedules under real processes: two `celery beat` processes and a Celery worker over Redis. Each due time
starts exactly one execution, and a trigger that missed hours of due times starts one, not one per time."""

import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from executions.models import Execution
from tests.executions.test_celery_worker import (  # noqa: F401 - fixture
    REDIS_URL,
    ROOT,
    Worker,
    _database_url,
    celery_worker,
    wait_for,
)
from tests.factories import ConnectorFactory
from triggers.models import Trigger
from triggers.services import trigger_create

pytestmark = pytest.mark.django_db(transaction=True)

TICK = "1"
TASK = "triggers.tasks.fire_due_schedules"


@pytest.fixture
def two_beats(celery_worker, tmp_path):  # noqa: F811
    import os

    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_QUEUE": celery_app.conf.CELERY_TASK_DEFAULT_QUEUE,  # the test worker's own queue
        "DATABASE_URL": _database_url(),
        "CONNECTORS_SCHEDULE_TICK_SECONDS": TICK,
        "PYTHONUNBUFFERED": "1",
    }
    beats = []
    for number in (1, 2):
        log = Path(tempfile.mkstemp(prefix=f"celery-beat-{number}-", suffix=".log")[1])
        command = [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            f"--schedule={tmp_path / f'beat-{number}'}",
            f"--pidfile={tmp_path / f'beat-{number}.pid'}",
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        beats.append(Worker(process, log))
    try:
        yield beats
    finally:
        for beat in beats:
            beat.process.terminate()
            try:
                beat.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                beat.process.kill()
                beat.process.wait(timeout=10)
            beat.log.unlink(missing_ok=True)


def ticks_sent(beat: Worker) -> int:
    return beat.output().count(f"Sending due task fire-due-schedules ({TASK})")


def test_two_beats_start_each_due_time_once_and_catch_up_once(two_beats, celery_worker, acme):  # noqa: F811
    connector = ConnectorFactory(workspace=acme, is_active=True)
    now = timezone.now()
    # Monthly on a day that is neither today nor tomorrow: no due time falls inside the test by itself.
    day = next(d for d in range(1, 29) if d not in (now.day, (now + timedelta(days=1)).day))
    cron = f"0 0 {day} * *"
    due_now, _ = trigger_create(connector=connector, data={"type": "schedule", "cron": cron, "input": {"n": 1}})
    missed, _ = trigger_create(connector=connector, data={"type": "schedule", "cron": cron, "input": {"n": 2}})
    Trigger.objects.filter(pk=due_now.pk).update(next_run_at=now - timedelta(seconds=2))
    Trigger.objects.filter(pk=missed.pk).update(next_run_at=now - timedelta(days=100))  # three missed due times

    wait_for(
        lambda: Execution.objects.filter(triggered_by="schedule").count() >= 2,
        worker=celery_worker,
        what="the schedules to start",
    )
    # Both beats keep ticking (a worker runs each tick); the due times already started must not start again.
    seen = [ticks_sent(beat) for beat in two_beats]
    give_up = time.monotonic() + 60
    while any(ticks_sent(beat) < count + 3 for beat, count in zip(two_beats, seen, strict=True)):
        assert time.monotonic() < give_up, [beat.output()[-2000:] for beat in two_beats]
        time.sleep(0.2)
    time.sleep(1)  # the last ticks sent are run by the worker

    started = Execution.objects.filter(triggered_by="schedule", connector=connector)
    assert sorted(e.input["n"] for e in started) == [1, 2]
    for trigger in (due_now, missed):
        trigger.refresh_from_db()
        assert trigger.next_run_at > now
        assert trigger.next_run_at.day == day
        assert trigger.last_fired_at is not None
