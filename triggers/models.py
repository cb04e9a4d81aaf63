import uuid

from django.db import models

from connectors.models import Connector
from workspaces.models import Workspace


class TriggerType(models.TextChoices):
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"


class Trigger(models.Model):
    """Starts executions of a connector: an inbound webhook (`POST /hooks/{token}`) or a cron schedule.

    Webhook: `token` is the unguessable part of its URL; `signing_secret` is the vault ciphertext of its
    Standard Webhooks secret. Schedule: `next_run_at` is the next due time (UTC); beat claims it with a
    conditional UPDATE (triggers.schedules), which is what makes each due time start exactly once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="triggers")
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="triggers")
    type = models.CharField(max_length=16, choices=TriggerType.choices)
    is_active = models.BooleanField(default=True)
    input = models.JSONField(default=dict, blank=True)
    # NULL for schedules: the unique constraint ignores them.
    token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    signing_secret = models.TextField(blank=True, default="")
    require_signature = models.BooleanField(default=False)
    cron = models.CharField(max_length=200, blank=True, default="")
    timezone = models.CharField(max_length=64, blank=True, default="UTC")
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["connector", "created_at"], name="trigger_connector_created"),
            models.Index(
                fields=["next_run_at"],
                condition=models.Q(type="schedule", is_active=True),
                name="trigger_schedule_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} trigger of {self.connector_id}"
