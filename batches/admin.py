from django.contrib import admin

from batches.models import Batch
from core.admin_tools import ReadOnlyAdminMixin, UUIDSearchMixin, admin_link, changelist_link


@admin.register(Batch)
class BatchAdmin(UUIDSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "connector_column", "workspace_column", "count", "ended", "created_at", "finished_at"]
    uuid_search_fields = ("pk", "connector_id", "workspace_id")
    search_fields = ["connector__name", "workspace__name"]
    list_select_related = ["connector", "workspace"]
    ordering = ["-created_at"]
    fields = ["id", "connector", "workspace", "count", "ended", "executions_link", "created_at", "finished_at"]
    readonly_fields = fields

    @admin.display(description="Connector", ordering="connector__name")
    def connector_column(self, batch: Batch):
        return admin_link("connectors_connector", batch.connector_id, batch.connector.name)

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, batch: Batch):
        return admin_link("workspaces_workspace", batch.workspace_id, batch.workspace.name)

    @admin.display(description="Executions")
    def executions_link(self, batch: Batch):
        return changelist_link("executions_execution", f"{batch.count} executions", batch__id__exact=batch.pk)
