from django.db import models

from workspaces.models import Workspace


class CredentialType(models.TextChoices):
    STATIC = "static"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"
    OAUTH2_REFRESH_TOKEN = "oauth2_refresh_token"


class Credential(models.Model):
    """A workspace's secret for one service: named fields encrypted together as one JSON object.

    `ciphertext` is an AES-256-GCM token (format version, key id, nonce and ciphertext) bound to the workspace
    and service name; only `field_names` is readable, for listing. OAuth2 credentials also keep their current
    access token, encrypted the same way, in `token_ciphertext` (shared by every execution until it expires).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="credentials")
    service_name = models.CharField(max_length=64)
    field_names = models.JSONField(default=list)
    ciphertext = models.TextField()
    key_id = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    type = models.CharField(max_length=32, choices=CredentialType.choices, default=CredentialType.STATIC)
    # {"requests": N, "per_seconds": S}: the outbound rate budget of steps using it (executions.ratelimit).
    rate_limit = models.JSONField(null=True, blank=True)
    # OAuth2: the current access token, encrypted like the fields (credentials.oauth), and when it expires.
    token_ciphertext = models.TextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "service_name"], name="unique_credential_per_service")
        ]
        ordering = ["service_name"]

    def __str__(self) -> str:
        return f"{self.service_name} ({self.workspace_id})"
