"""Reads for the SaaS console: platform figures, per-workspace activity and the dashboard's chart series.

Every function here costs a fixed number of queries whatever the number of rows: counts are aggregates or
correlated subqueries, never Python loops over rows. Two sources are used on purpose:

- the figures (`platform_stats`) and the per-workspace activity (`workspaces.selectors`, shared with the
  workspaces admin) count the `Execution` rows themselves, so they always equal what the database holds;
- the chart series read the per-connector daily rollup (`ConnectorDailyStats`, written in the transaction that
  finishes an execution), so the dashboard stays cheap however many executions there are. A rollup day is the
  UTC day the execution finished; it counts succeeded and failed executions (not cancelled ones) and keeps its
  history when old executions are pruned.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from connectors.models import Connector
from executions.models import ConnectorDailyStats, Execution, Status
from templates_market.models import ConnectorTemplate
from usage.models import MonthlyUsage
from usage.selectors import with_http_requests
from workspaces.models import User, Workspace
from workspaces.selectors import ACTIVITY_WINDOW_DAYS

WINDOW_DAYS = ACTIVITY_WINDOW_DAYS


def platform_stats(*, now: datetime | None = None) -> dict:
    """The figures of GET /api/v1/admin/stats and of the dashboard; five queries.

    `users` counts every account, staff included; `templates` every template, public or not;
    `executions.last_24h` the executions created in the 24 hours before `now`.
    """
    now = now or timezone.now()
    executions = Execution.objects.order_by().aggregate(
        total=Count("pk"),
        succeeded=Count("pk", filter=Q(status=Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        last_24h=Count("pk", filter=Q(created_at__gte=now - timedelta(hours=24))),
    )
    return {
        "workspaces": Workspace.objects.count(),
        "users": User.objects.count(),
        "connectors": Connector.objects.count(),
        "templates": ConnectorTemplate.objects.count(),
        "executions": executions,
    }


def recent_executions(*, limit: int) -> QuerySet[Execution]:
    """The newest `limit` executions of all workspaces, with `connector_name` and `workspace_name`; one query.

    The stored definition (a copy of the connector's steps) is left out: nothing that lists executions shows it.
    """
    return (
        Execution.objects.annotate(connector_name=F("connector__name"), workspace_name=F("workspace__name"))
        .defer("definition")
        .order_by("-created_at", "id")[:limit]
    )


@dataclass(frozen=True)
class DayCount:
    day: date
    succeeded: int
    failed: int


@dataclass(frozen=True)
class LabelledValue:
    label: str
    value: float
    detail: str = ""


def _window(days: int, today: date | None) -> tuple[date, date]:
    # The rollup is keyed by the UTC date of timezone.now(), whatever TIME_ZONE says.
    last = today or timezone.now().date()
    return last - timedelta(days=days - 1), last


def executions_per_day(*, days: int = WINDOW_DAYS, today: date | None = None) -> list[DayCount]:
    """Finished executions per UTC day, succeeded and failed: `days` entries, oldest first, `today` last,
    days without executions included as zeros. One query on the daily rollup."""
    first, last = _window(days, today)
    rows = (
        ConnectorDailyStats.objects.filter(date__range=(first, last))
        .order_by()
        .values("date")
        .annotate(succeeded=Sum("succeeded"), failed=Sum("failed"))
    )
    by_day = {row["date"]: row for row in rows}
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day, {})
        series.append(DayCount(day=day, succeeded=row.get("succeeded") or 0, failed=row.get("failed") or 0))
    return series


def top_workspaces(*, days: int = WINDOW_DAYS, limit: int = 10, today: date | None = None) -> list[LabelledValue]:
    """The `limit` workspaces with the most finished (succeeded + failed) executions over the window; one query."""
    first, last = _window(days, today)
    rows = (
        ConnectorDailyStats.objects.filter(date__range=(first, last))
        .order_by()
        .values("workspace_id", "workspace__name")
        .annotate(runs=Sum(F("succeeded") + F("failed")), failed_runs=Sum("failed"))
        .filter(runs__gt=0)
        .order_by("-runs", "workspace__name", "workspace_id")[:limit]
    )
    return [
        LabelledValue(label=row["workspace__name"], value=row["runs"], detail=f"{row['failed_runs']} failed")
        for row in rows
    ]


def slowest_connectors(*, days: int = WINDOW_DAYS, limit: int = 10, today: date | None = None) -> list[LabelledValue]:
    """The `limit` connectors with the highest average duration (ms) of their finished executions over the
    window, as total duration / finished runs from the rollup; one query."""
    first, last = _window(days, today)
    rows = (
        ConnectorDailyStats.objects.filter(date__range=(first, last))
        .order_by()
        .values("connector_id", "connector__name", "connector__workspace__name")
        .annotate(runs=Sum(F("succeeded") + F("failed")), total_ms=Sum("total_duration_ms"))
        .filter(runs__gt=0)
        .annotate(avg_ms=Cast("total_ms", FloatField()) / F("runs"))
        .order_by("-avg_ms", "connector__name", "connector_id")[:limit]
    )
    return [
        LabelledValue(
            label=f"{row['connector__name']} ({row['connector__workspace__name']})",
            value=row["avg_ms"],
            detail=f"{row['runs']} runs",
        )
        for row in rows
    ]


def success_rate(series: list[DayCount]) -> float | None:
    """Succeeded / (succeeded + failed) over a series; None when nothing finished."""
    succeeded = sum(day.succeeded for day in series)
    finished = succeeded + sum(day.failed for day in series)
    return succeeded / finished if finished else None


def top_usage(*, month: date, limit: int = 10) -> list:
    """The workspaces that started the most executions in `month`, with their quota (one query)."""
    rows = (
        with_http_requests(MonthlyUsage.objects.filter(month=month))
        .select_related("workspace", "workspace__quota")
        .order_by("-executions", "workspace__name")[:limit]
    )
    items = []
    for row in rows:
        quota = getattr(row.workspace, "quota", None)
        limit_text = (
            "no quota" if quota is None or quota.executions_per_month is None else f"quota {quota.executions_per_month}"
        )
        items.append(
            LabelledValue(
                label=row.workspace.name,
                value=row.executions,
                detail=f"{row.http_requests} HTTP requests; {limit_text}",
            )
        )
    return items
