from django.db import models

from workspaces.models import Workspace


class WorkspaceQuota(models.Model):
    """What a workspace may use per calendar month (UTC); no row, or a null limit, means unlimited. Set by
    staff in the admin or with PATCH /api/v1/admin/workspaces/{id}."""

    workspace = models.OneToOneField(Workspace, primary_key=True, on_delete=models.CASCADE, related_name="quota")
    executions_per_month = models.PositiveIntegerField(
        null=True, blank=True, help_text="Executions that may start per calendar month (UTC); empty: unlimited."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.executions_per_month if self.executions_per_month is not None else '∞'}"


class MonthlyUsage(models.Model):
    """Executions started, one row per workspace and month, moved only by single-statement increments
    (usage.services), so it costs the same whatever the workspace has run."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="monthly_usage")
    month = models.DateField(help_text="The first day of the month (UTC).")
    executions = models.BigIntegerField(default=0, help_text="Executions started.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "month"], name="unique_workspace_month")]
        ordering = ["-month", "workspace"]
        verbose_name_plural = "monthly usage"

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.month:%Y-%m}: {self.executions} executions"


class MonthlyHttpRequests(models.Model):
    """HTTP requests sent by steps, one row per workspace and month, apart from MonthlyUsage on purpose: an
    execute call keeps the month's MonthlyUsage row locked until it commits (the quota's reservation), and a
    finishing run adds its requests in its own commit; on one row each waited for the other's commit
    (docs/performance.md, sixth pass)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="monthly_http_requests")
    month = models.DateField(help_text="The first day of the month (UTC).")
    http_requests = models.BigIntegerField(default=0, help_text="HTTP requests sent by steps.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "month"], name="unique_requests_workspace_month")]
        ordering = ["-month", "workspace"]
        verbose_name_plural = "monthly HTTP requests"

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.month:%Y-%m}: {self.http_requests} HTTP requests"
