"""Connectors in the SaaS console.

Staff may rename, describe, activate and deactivate a connector; its definition is shown, not edited here
(definitions are validated by the API), and every write goes through `connectors.services`. The list reads
the connector's own counters and its workspace by join, so a page costs a fixed number of queries.
"""

from django.contrib import admin, messages

from connectors import services
from connectors.models import Connector
from connectors.services import connectors_set_active
from core.admin_tools import ListDeferMixin, UUIDSearchMixin, admin_link, changelist_link, pretty_json


class TemplateInstalledFilter(admin.SimpleListFilter):
    title = "installed from a template"
    parameter_name = "from_template"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(template__isnull=self.value() == "no")
        return queryset


@admin.register(Connector)
class ConnectorAdmin(UUIDSearchMixin, ListDeferMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "workspace_column",
        "is_active",
        "version",
        "executions_column",
        "successful_executions",
        "failed_executions",
        "last_executed_at",
        "created_at",
    ]
    list_filter = ["is_active", TemplateInstalledFilter, "last_executed_at", "created_at"]
    search_fields = ["name", "workspace__name"]
    uuid_search_fields = ("pk", "workspace_id", "template_id")
    search_help_text = "A connector name or workspace name; or a connector, workspace or template id."
    list_select_related = ["workspace"]
    list_deferred = ("description", "steps", "input_schema", "contact_mapping")
    raw_id_fields = ["workspace", "template"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "id"]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["id", "name", "description", "is_active", "workspace_column", "template_column"]}),
        (
            "Definition",
            {
                "fields": [
                    "version",
                    "max_duration_seconds",
                    "input_schema_json",
                    "steps_json",
                    "contact_mapping_json",
                ]
            },
        ),
        (
            "Executions",
            {
                "fields": [
                    "executions_column",
                    "successful_executions",
                    "failed_executions",
                    "last_executed_at",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [
        "id",
        "workspace_column",
        "template_column",
        "version",
        "max_duration_seconds",
        "input_schema_json",
        "steps_json",
        "contact_mapping_json",
        "executions_column",
        "successful_executions",
        "failed_executions",
        "last_executed_at",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        # A connector is created through the API or a template install, where its definition is validated.
        return False

    def save_model(self, request, obj, form, change):
        # `obj` already carries the form's values; the service compares against the stored row.
        stored = Connector.objects.get(pk=obj.pk)
        services.connector_update(connector=stored, data={name: form.cleaned_data[name] for name in form.changed_data})

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, connector: Connector):
        return admin_link("workspaces_workspace", connector.workspace_id, connector.workspace.name)

    @admin.display(description="Template")
    def template_column(self, connector: Connector):
        if connector.template_id is None:
            return "-"
        return admin_link(
            "templates_market_connectortemplate",
            connector.template_id,
            f"{connector.template_id} (installed version {connector.template_version})",
        )

    @admin.display(description="Executions", ordering="total_executions")
    def executions_column(self, connector: Connector):
        return changelist_link("executions_execution", connector.total_executions, connector=connector.pk)

    @admin.display(description="Input schema")
    def input_schema_json(self, connector: Connector):
        return pretty_json(connector.input_schema)

    @admin.display(description="Steps")
    def steps_json(self, connector: Connector):
        return pretty_json(connector.steps)

    @admin.display(description="Contact mapping")
    def contact_mapping_json(self, connector: Connector):
        return pretty_json(connector.contact_mapping)

    @admin.action(description="Activate selected connectors", permissions=["change"])
    def activate(self, request, queryset):
        changed = connectors_set_active(queryset=queryset, is_active=True)
        self.message_user(request, f"Activated {changed} connector(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected connectors", permissions=["change"])
    def deactivate(self, request, queryset):
        changed = connectors_set_active(queryset=queryset, is_active=False)
        self.message_user(request, f"Deactivated {changed} connector(s).", messages.SUCCESS)
