"""The audit log in the SaaS console: a read-only list with filters; nobody adds, edits or deletes entries."""

from django.contrib import admin

from audit.models import AuditEntry
from core.admin_tools import admin_link


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace_column", "actor", "action", "target_type", "target_id", "ip"]
    list_filter = ["action", "target_type", "created_at"]
    search_fields = ["actor", "target_id", "=workspace__id", "workspace__name"]
    search_help_text = "An actor (email or api_key:prefix), a target id, or a workspace id or name."
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ["created_at", "workspace_column", "actor", "ip", "action", "target_type", "target_id", "details"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, entry: AuditEntry):
        return admin_link("workspaces_workspace", entry.workspace_id, entry.workspace.name)
