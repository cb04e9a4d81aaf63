"""Reads about executions: filtered lists and connector statistics, computed in the database."""

import functools
from datetime import timedelta

from django.db.models import QuerySet, Sum
from django.utils import timezone
from rest_framework import serializers

from connectors.models import Connector
from executions import histogram
from executions.models import ConnectorDailyStats, Execution, ExecutionStep, Status
from executions.step_stats import step_stats

STATS_DAYS = 30


def filter_executions(queryset: QuerySet, params) -> QuerySet:
    """Applies `?status=`, `?connector=` and `?since=` (ISO time); bad values raise ValidationError (400)."""
    status = params.get("status")
    if status:
        if status not in Status.values:
            raise serializers.ValidationError({"status": [f"Use one of {', '.join(Status.values)}."]})
        queryset = queryset.filter(status=status)
    connector = params.get("connector")
    if connector:
        try:
            connector_id = serializers.UUIDField().run_validation(connector)
        except serializers.ValidationError:
            raise serializers.ValidationError({"connector": ["Use a connector id (a UUID)."]}) from None
        queryset = queryset.filter(connector_id=connector_id)
    since = params.get("since")
    if since:
        try:
            moment = serializers.DateTimeField().run_validation(since)
        except serializers.ValidationError:
            raise serializers.ValidationError({"since": ["Use an ISO 8601 date-time."]}) from None
        queryset = queryset.filter(created_at__gte=moment)
    return queryset


def with_steps(queryset: QuerySet) -> QuerySet:
    return queryset.prefetch_related("step_records")


def without_steps_yet(execution: Execution) -> Execution:
    """A just-created execution, ready to serialize without a query: no worker has claimed it yet, so it has
    no steps (the same cache a `with_steps` prefetch fills)."""
    execution._prefetched_objects_cache = {"step_records": _no_steps()}
    return execution


@functools.cache
def _no_steps() -> QuerySet:
    """An empty step queryset, evaluated once (none() never reaches the database) and only read afterwards:
    serializing it then costs neither a query nor compiling one."""
    steps = ExecutionStep.objects.none()
    len(steps)
    return steps


def connector_stats(connector: Connector) -> dict:
    """Totals from the connector's counters, averages and the daily series from the daily rollup, and the
    95th percentile from the duration histogram: nothing here reads executions, so pruning keeps it all."""
    today = timezone.now().date()
    first_day = today - timedelta(days=STATS_DAYS - 1)
    rollup = ConnectorDailyStats.objects.filter(connector=connector)
    totals = rollup.aggregate(duration=Sum("total_duration_ms"), ok=Sum("succeeded"), ko=Sum("failed"))
    timed = (totals["ok"] or 0) + (totals["ko"] or 0)
    by_day = {row["date"]: row for row in rollup.filter(date__gte=first_day).values("date", "succeeded", "failed")}
    daily = [
        {
            "date": day,
            "succeeded": by_day.get(day, {}).get("succeeded", 0),
            "failed": by_day.get(day, {}).get("failed", 0),
        }
        for day in (first_day + timedelta(days=offset) for offset in range(STATS_DAYS))
    ]
    decided = connector.successful_executions + connector.failed_executions
    return {
        "total_executions": connector.total_executions,
        "successful_executions": connector.successful_executions,
        "failed_executions": connector.failed_executions,
        "success_rate": round(connector.successful_executions / decided, 4) if decided else None,
        "avg_duration_ms": round(totals["duration"] / timed, 1) if timed else None,
        "p95_duration_ms": _p95_duration(connector, timed),
        "last_executed_at": connector.last_executed_at,
        "daily": daily,
        "steps": step_stats(connector.pk, [step["name"] for step in connector.steps]),
    }


def _p95_duration(connector: Connector, count: int) -> int | None:
    """From the duration histogram (executions.histogram), not the executions: pruning keeps it."""
    if not count:
        return None
    return histogram.percentile(connector_id=connector.pk, fraction=0.95)
