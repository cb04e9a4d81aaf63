from django.db import models

from workspaces.models import Workspace

SYSTEM_ACTOR = "system"


class AuditEntry(models.Model):
    """One create, update or delete in a workspace: who (a user's email, `api_key:<prefix>` or `system`),
    what, on which object, from where. Written only by `audit.services.record`; never updated (PostgreSQL
    refuses an UPDATE, see the migration), deleted only with its workspace. Holds no secret value: targets are
    named by type and id, and `details` lists changed field names, never values."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    actor = models.CharField(max_length=320)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="audit_ws_created"),
            models.Index(fields=["action", "-created_at"], name="audit_action_created"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target_type}:{self.target_id}"
