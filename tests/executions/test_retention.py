"""Retention (EXECUTION_RETENTION_DAYS, daily under beat) and the duration histogram /stats reads instead of
executions, so pruning changes no statistic."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from executions.histogram import bucket_of
from executions.models import ConnectorDurationBucket, Execution, Status
from executions.tasks import prune_old_executions
from tests.executions.helpers import make_connector
from tests.executions.test_stats import finish_at, stats


@pytest.fixture
def connector(acme, local_server):
    return make_connector(acme, [{"name": "x", "url": f"{local_server.url}/x"}])


def age(execution, days: int) -> None:
    Execution.objects.filter(pk=execution.pk).update(created_at=timezone.now() - timedelta(days=days))


@pytest.mark.parametrize(
    ("duration", "bucket"),
    [(0, 0), (7, 7), (999, 999), (1000, 1000), (1234, 1230), (9999, 9990), (12345, 12300), (654321, 654000)],
)
def test_buckets_are_exact_below_a_second_and_three_digits_above(duration, bucket):
    assert bucket_of(duration) == bucket


def test_beat_runs_the_retention_daily():
    entry = django_settings.CELERY_BEAT_SCHEDULE["prune-old-executions"]

    assert entry["task"] == "executions.tasks.prune_old_executions"
    assert entry["schedule"] == 24 * 3600


def test_pruning_keeps_every_statistic(alice_api, connector, monkeypatch, settings):
    settings.EXECUTION_RETENTION_DAYS = 30
    old = [finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=ms, days_ago=2) for ms in (10, 20, 30)]
    old.append(finish_at(monkeypatch, connector, Status.FAILED, duration_ms=2000, days_ago=2))
    recent = finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=40)
    for execution in old:
        age(execution, 31)
    before = stats(alice_api, connector)

    assert prune_old_executions() == 4

    assert list(Execution.objects.filter(connector=connector).values_list("pk", flat=True)) == [recent.pk]
    assert stats(alice_api, connector) == before
    assert before["p95_duration_ms"] == 2000
    assert before["total_executions"] == 5


def test_queued_and_running_executions_are_kept(connector, settings):
    from executions import lifecycle, services

    settings.EXECUTION_RETENTION_DAYS = 1
    queued = services.execution_create(connector=connector, input={}, enqueue=False)
    running = lifecycle.claim(services.execution_create(connector=connector, input={}, enqueue=False).id)
    age(queued, 10)
    age(running, 10)

    assert prune_old_executions() == 0
    assert Execution.objects.filter(pk__in=[queued.pk, running.pk]).count() == 2


def test_zero_keeps_everything(connector, monkeypatch, settings):
    settings.EXECUTION_RETENTION_DAYS = 0
    execution = finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=10)
    age(execution, 3650)

    assert prune_old_executions() == 0
    assert Execution.objects.filter(pk=execution.pk).exists()


def test_the_histogram_counts_finished_runs_only(connector, monkeypatch):
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=15)
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=15)
    finish_at(monkeypatch, connector, Status.FAILED, duration_ms=1234)
    finish_at(monkeypatch, connector, Status.CANCELLED, duration_ms=99)

    assert sorted(ConnectorDurationBucket.objects.values_list("bucket_ms", "count")) == [(15, 2), (1230, 1)]
