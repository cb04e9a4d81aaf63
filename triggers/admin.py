"""Triggers in the SaaS console: type, connector, workspace, next and last run. The webhook token (the URL's
secret part) and the signing secret are never shown."""

from django.contrib import admin

from core.admin_tools import ReadOnlyAdminMixin, UUIDSearchMixin, admin_link
from triggers.models import Trigger


@admin.register(Trigger)
class TriggerAdmin(UUIDSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "type",
        "connector_column",
        "workspace_column",
        "is_active",
        "schedule",
        "next_run_at",
        "last_fired_at",
        "created_at",
    ]
    list_filter = ["type", "is_active"]
    search_fields = ["connector__name", "workspace__name", "cron"]
    uuid_search_fields = ("pk", "connector_id", "workspace_id")
    list_select_related = ["connector", "workspace"]
    ordering = ["-created_at"]
    fields = ["id", "type", "connector", "workspace", "is_active", "input", "require_signature", "cron", "timezone"]
    fields += ["next_run_at", "last_fired_at", "created_at", "updated_at"]
    readonly_fields = fields
    actions = ["deactivate"]

    @admin.display(description="Connector", ordering="connector__name")
    def connector_column(self, trigger: Trigger):
        return admin_link("connectors_connector", trigger.connector_id, trigger.connector.name)

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, trigger: Trigger):
        return admin_link("workspaces_workspace", trigger.workspace_id, trigger.workspace.name)

    @admin.display(description="Schedule")
    def schedule(self, trigger: Trigger) -> str:
        return f"{trigger.cron} ({trigger.timezone})" if trigger.cron else "-"

    @admin.action(description="Deactivate the selected triggers")
    def deactivate(self, request, queryset):
        from triggers.services import trigger_update

        for trigger in queryset.filter(is_active=True):
            trigger_update(trigger=trigger, data={"is_active": False})
        self.message_user(request, "Deactivated.")
