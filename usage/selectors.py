"""Reads of usage and quotas."""

from datetime import date
from typing import Any

from usage.models import MonthlyUsage, WorkspaceQuota


def usage_of(*, workspace_id: Any, month: date) -> dict[str, Any]:
    """The figures GET /api/v1/workspace/usage shows (two indexed single-row reads)."""
    row = MonthlyUsage.objects.filter(workspace_id=workspace_id, month=month).values("executions", "http_requests")
    found = row.first() or {"executions": 0, "http_requests": 0}
    limit = WorkspaceQuota.objects.filter(workspace_id=workspace_id).values_list("executions_per_month", flat=True)
    quota = limit.first()
    return {
        "month": f"{month:%Y-%m}",
        "executions": found["executions"],
        "http_requests": found["http_requests"],
        "quota": {"executions_per_month": quota},
        "remaining": max(0, quota - found["executions"]) if quota is not None else None,
    }
