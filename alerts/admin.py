from django.contrib import admin

from alerts.models import AlertSettings
from core.admin_tools import admin_link


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    list_display = ["workspace_column", "on_failure", "min_interval_minutes", "last_sent_at"]
    list_filter = ["on_failure"]
    search_fields = ["=workspace__id", "workspace__name"]
    list_select_related = ["workspace"]
    fields = [
        "workspace",
        "emails",
        "on_failure",
        "min_interval_minutes",
        "last_sent_at",
        "reported_until",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    # Members edit their settings through the API; staff read them here.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, row: AlertSettings):
        return admin_link("workspaces_workspace", row.workspace_id, row.workspace.name)
