from django.contrib import admin

from connectors.models import Connector


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "workspace",
        "is_active",
        "version",
        "total_executions",
        "successful_executions",
        "failed_executions",
        "last_executed_at",
        "created_at",
    ]
    list_filter = ["is_active", "created_at"]
    search_fields = ["name", "description", "workspace__name", "id"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace", "template"]
    readonly_fields = [
        "id",
        "version",
        "total_executions",
        "successful_executions",
        "failed_executions",
        "last_executed_at",
        "created_at",
        "updated_at",
    ]
