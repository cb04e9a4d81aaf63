from django.db import models

from workspaces.models import Workspace


class Credential(models.Model):
    """A workspace's secret for one service: named fields encrypted together as one JSON object.

    `ciphertext` is an AES-256-GCM token (format version, key id, nonce and ciphertext) bound to the workspace
    and service name; only `field_names` is readable, for listing.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="credentials")
    service_name = models.CharField(max_length=64)
    field_names = models.JSONField(default=list)
    ciphertext = models.TextField()
    key_id = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "service_name"], name="unique_credential_per_service")
        ]
        ordering = ["service_name"]

    def __str__(self) -> str:
        return f"{self.service_name} ({self.workspace_id})"
