import uuid

from django.db import models

from workspaces.models import Workspace

# Contact fields a connector's contact_mapping may write (docs/api.md §5), besides `custom_fields.<key>`.
MAPPABLE_FIELDS = ("email", "phone", "first_name", "last_name", "company", "job_title", "phone_valid")


class Contact(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    company = models.CharField(max_length=200, blank=True)
    job_title = models.CharField(max_length=200, blank=True)
    phone_valid = models.BooleanField(null=True, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="contact_ws_created")]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.phone or str(self.id)

    def as_template_context(self) -> dict:
        """The `contact` namespace of templates: every mappable field plus custom fields."""
        context = {field: getattr(self, field) for field in MAPPABLE_FIELDS}
        context["id"] = str(self.id)
        context["custom_fields"] = dict(self.custom_fields)
        return context
