"""Reads of usage and quotas."""

from datetime import date
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from usage.models import MonthlyHttpRequests, MonthlyUsage, WorkspaceQuota


def usage_of(*, workspace_id: Any, month: date) -> dict[str, Any]:
    """The figures GET /api/v1/workspace/usage shows (three indexed single-row reads)."""
    executions = MonthlyUsage.objects.filter(workspace_id=workspace_id, month=month).values_list(
        "executions", flat=True
    )
    requests = MonthlyHttpRequests.objects.filter(workspace_id=workspace_id, month=month).values_list(
        "http_requests", flat=True
    )
    limit = WorkspaceQuota.objects.filter(workspace_id=workspace_id).values_list("executions_per_month", flat=True)
    started = executions.first() or 0
    quota = limit.first()
    return {
        "month": f"{month:%Y-%m}",
        "executions": started,
        "http_requests": requests.first() or 0,
        "quota": {"executions_per_month": quota},
        "remaining": max(0, quota - started) if quota is not None else None,
    }


def with_http_requests(usage: QuerySet[MonthlyUsage]) -> QuerySet[MonthlyUsage]:
    """Each month's row with `http_requests`, the HTTP requests its workspace's steps sent that month (kept in
    their own table, usage.models.MonthlyHttpRequests), in the same query."""
    sent = MonthlyHttpRequests.objects.filter(workspace_id=OuterRef("workspace_id"), month=OuterRef("month"))
    return usage.annotate(http_requests=Coalesce(Subquery(sent.values("http_requests")[:1]), Value(0)))
