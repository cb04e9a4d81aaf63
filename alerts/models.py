from django.db import models

from workspaces.models import Workspace

DEFAULT_MIN_INTERVAL_MINUTES = 60


class AlertSettings(models.Model):
    """Who gets an email when the workspace's executions fail, and how often at most.

    `last_sent_at` and `reported_until` are the digest's state: failures that finished after
    `reported_until` are not reported yet, and the next digest may go out `min_interval_minutes` after
    `last_sent_at`. Both move together in one conditional UPDATE, which is how two workers agree on who sends.
    """

    workspace = models.OneToOneField(Workspace, primary_key=True, on_delete=models.CASCADE, related_name="+")
    emails = models.JSONField(default=list, blank=True)
    on_failure = models.BooleanField(default=True)
    min_interval_minutes = models.PositiveIntegerField(default=DEFAULT_MIN_INTERVAL_MINUTES)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    reported_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"{self.workspace_id}: {len(self.emails)} address(es)"
