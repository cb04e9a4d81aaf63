"""Deleting old execution records in batches (EXECUTION_RETENTION_DAYS, daily under beat; the
prune_executions command). Statistics do not read executions (counters, the daily rollup and the duration
histogram), so they are the same before and after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from executions.models import FINISHED_STATUSES, Execution

BATCH_SIZE = 1000


def prune_finished(
    *,
    older_than_days: int,
    batch_size: int = BATCH_SIZE,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Deletes finished executions created more than `older_than_days` days ago (queued and running ones
    stay), `batch_size` per transaction so no lock is held long; returns how many. Safe to run concurrently:
    a row deleted by someone else is simply not counted twice."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be 0 or more")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    old = Execution.objects.filter(created_at__lt=cutoff, status__in=FINISHED_STATUSES).order_by()
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(old.values_list("id", flat=True)[: max(1, batch_size)])
            if not ids:
                break
            _, by_model = Execution.objects.filter(id__in=ids, status__in=FINISHED_STATUSES).delete()
            count = by_model.get(Execution._meta.label, 0)
        deleted += count
        if progress is not None:
            progress(count)
    return deleted


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days)
