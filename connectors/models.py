import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from connectors.engine.spec import DEFAULT_MAX_DURATION_SECONDS
from workspaces.models import Workspace

# The parts of a connector that make up its definition: changing any of them bumps `version`.
DEFINITION_FIELDS = ("steps", "input_schema", "contact_mapping", "max_duration_seconds")


class Connector(models.Model):
    """A workspace's connector: its definition, stored normalized (every default filled in) so the engine
    reads it as is, and its execution counters, kept exact by the execution lifecycle."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="connectors")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    is_active = models.BooleanField(default=True)
    input_schema = models.JSONField(default=dict, blank=True)
    max_duration_seconds = models.PositiveIntegerField(default=DEFAULT_MAX_DURATION_SECONDS)
    steps = models.JSONField(default=list)
    contact_mapping = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    template = models.ForeignKey(
        "templates_market.ConnectorTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="connectors",
    )
    template_version = models.PositiveIntegerField(null=True, blank=True)
    total_executions = models.PositiveIntegerField(default=0)
    successful_executions = models.PositiveIntegerField(default=0)
    failed_executions = models.PositiveIntegerField(default=0)
    last_executed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="connector_ws_created")]

    def __str__(self) -> str:
        return self.name

    @property
    def definition(self) -> dict:
        return {field: getattr(self, field) for field in DEFINITION_FIELDS}


class ConnectorVersion(models.Model):
    """One version of a connector's definition, written in the same transaction as the change that made it.

    Append-only: every version, the current one included, has a row; a restore writes a new row, and the
    database refuses UPDATEs of this table (PostgreSQL trigger, migration 0004). Executions name the version
    they ran (`Execution.connector_version`), which always has its row here.
    """

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="versions")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["connector", "-version"]
        constraints = [models.UniqueConstraint(fields=["connector", "version"], name="unique_connector_version")]

    def __str__(self) -> str:
        return f"{self.connector_id} v{self.version}"
