"""Connectors in the SaaS console.

Staff may rename, describe, activate and deactivate a connector; its definition is shown, not edited here
(definitions are validated by the API), and every write goes through `connectors.services`. The list reads
the connector's own counters and its workspace by join, so a page costs a fixed number of queries.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from connectors import selectors, services
from connectors.dynamic_hosts import dynamic_hosts
from connectors.engine.spec import DEFAULT_MAX_DURATION_SECONDS, MAX_DURATION_SECONDS, MAX_TIMEOUT_SECONDS
from connectors.models import Connector, ConnectorVersion
from connectors.services import connectors_set_active
from core.admin_tools import (
    ListDeferMixin,
    ReadOnlyAdminMixin,
    UUIDSearchMixin,
    admin_link,
    changelist_link,
    pretty_json,
)
from executions.step_stats import step_stats
from executions.step_stats_chart import step_stats_chart


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
        (
            None,
            {
                "fields": [
                    "id",
                    "name",
                    "description",
                    "is_active",
                    "workspace_column",
                    "template_column",
                    "host_warnings",
                ]
            },
        ),
        (
            "Definition",
            {
                "fields": [
                    "version",
                    "versions_column",
                    "max_duration",
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
        ("Steps, last 30 days", {"fields": ["step_stats_chart"]}),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [
        "id",
        "host_warnings",
        "workspace_column",
        "template_column",
        "version",
        "versions_column",
        "max_duration",
        "input_schema_json",
        "steps_json",
        "contact_mapping_json",
        "executions_column",
        "successful_executions",
        "failed_executions",
        "last_executed_at",
        "step_stats_chart",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        # A connector is created through the API or a template install, where its definition is validated.
        return False

    def save_model(self, request, obj, form, change):
        # `obj` already carries the form's values; the service compares against the stored row.
        stored = Connector.objects.get(pk=obj.pk)
        services.connector_update(
            connector=stored, data={name: form.cleaned_data[name] for name in form.changed_data}, user=request.user
        )

    def get_urls(self):
        versions = path(
            "<path:object_id>/versions/",
            self.admin_site.admin_view(self.versions_view),
            name="connectors_connector_versions",
        )
        return [versions, *super().get_urls()]

    def versions_view(self, request, object_id):
        """The connector's versions, and a unified diff of two of them (`?from=&to=`; by default the one
        before the current and the current)."""
        connector = self.get_object(request, object_id)
        if connector is None:
            raise Http404("No such connector.")
        if not self.has_view_permission(request, connector):
            raise PermissionDenied
        versions = list(selectors.connector_versions(connector))
        by_number = {version.version: version for version in versions}
        older, newer = _chosen(request, by_number, versions)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Versions of {connector.name}",
            "opts": self.opts,
            "connector": connector,
            "versions": versions,
            "older": older,
            "newer": newer,
            "diff": _classified(selectors.definition_diff(older, newer)) if older and newer else [],
        }
        return TemplateResponse(request, "admin/connectors/connector_versions.html", context)

    @admin.display(description="Versions")
    def versions_column(self, connector: Connector):
        url = reverse("admin:connectors_connector_versions", args=[connector.pk])
        return format_html('<a href="{}">history and changes</a>', url)

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

    @admin.display(description="Caller-chosen hosts")
    def host_warnings(self, connector: Connector):
        found = dynamic_hosts({"steps": connector.steps})
        if not found:
            return "-"
        items = format_html_join("", "<li>{}</li>", ((host.warning(),) for host in found))
        return format_html('<ul class="messagelist"><li class="warning">Dynamic hosts<ul>{}</ul></li></ul>', items)

    @admin.display(description="Max duration")
    def max_duration(self, connector: Connector):
        return (
            f"{connector.max_duration_seconds} s (default {DEFAULT_MAX_DURATION_SECONDS} s, "
            f"at most {MAX_DURATION_SECONDS} s; each step times out after at most {MAX_TIMEOUT_SECONDS} s)"
        )

    @admin.display(description="Input schema")
    def input_schema_json(self, connector: Connector):
        return pretty_json(connector.input_schema)

    @admin.display(description="Steps")
    def steps_json(self, connector: Connector):
        return pretty_json(connector.steps)

    @admin.display(description="Requests per step")
    def step_stats_chart(self, connector: Connector):
        return step_stats_chart(step_stats(connector.pk, [step["name"] for step in connector.steps]))

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


@admin.register(ConnectorVersion)
class ConnectorVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Versions are a record, written by the connector services; never edited here (the table is append-only)."""

    list_display = ["connector", "version", "created_by", "created_at"]
    list_select_related = ["connector", "created_by"]
    raw_id_fields = ["connector", "workspace", "created_by"]
    search_fields = ["connector__name"]
    fields = ["connector", "workspace", "version", "created_by", "created_at", "definition_json"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Definition")
    def definition_json(self, version: ConnectorVersion):
        return pretty_json(version.definition)


def _chosen(request, by_number: dict, versions: list) -> tuple:
    """The two versions to compare: `?from=` and `?to=`, else the newest two (404 for an unknown number)."""
    if not versions:
        return None, None
    wanted = []
    for name, fallback in (("from", versions[min(1, len(versions) - 1)]), ("to", versions[0])):
        raw = request.GET.get(name)
        if raw is None:
            wanted.append(fallback)
            continue
        try:
            wanted.append(by_number[int(raw)])
        except (KeyError, ValueError):
            raise Http404(f"No version {raw!r} of this connector.") from None
    return wanted[0], wanted[1]


def _classified(lines: list[str]) -> list[tuple[str, str]]:
    """Diff lines with a CSS class each: added, removed, hunk header, or unchanged."""
    kinds = []
    for line in lines:
        if line.startswith(("+++", "---", "@@")):
            kinds.append(("hunk", line))
        elif line.startswith("+"):
            kinds.append(("add", line))
        elif line.startswith("-"):
            kinds.append(("del", line))
        else:
            kinds.append(("same", line))
    return kinds
