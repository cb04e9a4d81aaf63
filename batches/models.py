import uuid

from django.db import models

from connectors.models import Connector
from workspaces.models import Workspace


class Batch(models.Model):
    """Executions of one connector accepted together. `ended` counts those that reached a final status (kept
    by executions.events in each finishing transaction); `finished_at` is set when the last one ends. The
    per-status counts are one aggregate over the batch's executions (batches.selectors)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="batches")
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="batches")
    count = models.PositiveIntegerField()
    ended = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["workspace", "-created_at"], name="batch_ws_created")]

    def __str__(self) -> str:
        return f"{self.count} executions of {self.connector_id}"
