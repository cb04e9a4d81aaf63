"""Executions in the SaaS console: records to search, read and re-run, never to edit.

The executions table is the largest in the product, so its changelist never counts it whole, never lists a
foreign table's values in a filter, and loads neither the stored definition nor the payloads of listed rows:
a page costs the same number of queries whether it holds 10 or 10 million executions.
"""

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from core.admin_tools import (
    EMPTY,
    LargeTablePaginator,
    ListDeferMixin,
    ReadOnlyAdminMixin,
    UUIDSearchMixin,
    admin_link,
    changelist_link,
    pretty_json,
)
from executions.models import ConnectorDailyStats, Execution, ExecutionStep
from executions.services import executions_rerun_failed

# A listed execution or rollup shows its connector's name, never its definition.
CONNECTOR_BULK = tuple(f"connector__{name}" for name in ("description", "steps", "input_schema", "contact_mapping"))


class TriggeredByFilter(admin.SimpleListFilter):
    """Fixed choices: the default filter for a CharField would run SELECT DISTINCT over the whole table."""

    title = "triggered by"
    parameter_name = "triggered_by"

    def lookups(self, request, model_admin):
        return [(name, name) for name in ("api", "command", "admin", "webhook", "schedule", "batch")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(triggered_by=self.value())
        return queryset


class StepTraceMixin:
    """The request and response of a step, as escaped, pretty-printed JSON."""

    @admin.display(description="Request")
    def request_json(self, step: ExecutionStep):
        return pretty_json(step.request)

    @admin.display(description="Response")
    def response_json(self, step: ExecutionStep):
        return EMPTY if step.response is None else pretty_json(step.response)


class ExecutionStepInline(StepTraceMixin, admin.TabularInline):
    """The step trace: one row per step, its request, response and extracted values as escaped JSON."""

    model = ExecutionStep
    extra = 0
    can_delete = False
    fields = ["summary", "request_json", "response_json", "outcome"]
    readonly_fields = fields
    ordering = ["index"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Step")
    def summary(self, step: ExecutionStep):
        duration = EMPTY if step.duration_ms is None else f"{step.duration_ms} ms"
        return format_html(
            "<strong>{}. {}</strong><br>{}<br>{} attempt(s)<br>{}",
            step.index,
            step.name,
            step.get_status_display(),
            step.attempts,
            duration,
        )

    @admin.display(description="Extracted / error")
    def outcome(self, step: ExecutionStep):
        error = format_html('<p class="errornote">{}</p>', step.error) if step.error else ""
        return format_html("{}{}", error, pretty_json(step.extracted))


@admin.register(Execution)
class ExecutionAdmin(UUIDSearchMixin, ListDeferMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "connector_column",
        "workspace_column",
        "triggered_by",
        "attempts",
        "duration_ms",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", TriggeredByFilter, "cancel_requested"]
    date_hierarchy = "created_at"
    search_fields = ["connector__name", "workspace__name"]
    uuid_search_fields = ("pk", "connector_id", "workspace_id", "contact_id")
    search_help_text = "An execution, connector, workspace or contact id; or a connector or workspace name."
    ordering = ["-created_at", "id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would aggregate the whole table
    paginator = LargeTablePaginator
    list_per_page = 50
    list_deferred = ("definition", "input", "output", "notes", "pending_retry", "error", "request_fingerprint")
    raw_id_fields = ["workspace", "connector", "contact"]
    actions = ["rerun_failed"]
    inlines = [ExecutionStepInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "status",
                    "workspace_column",
                    "connector_column",
                    "connector_version",
                    "contact_column",
                    "triggered_by",
                    "attempts",
                    "error",
                ]
            },
        ),
        ("Data", {"fields": ["input_json", "output_json", "notes_json"]}),
        (
            "Timing and worker",
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration_ms",
                    "run_after",
                    "heartbeat_at",
                    "worker",
                    "requeue_count",
                    "cancel_requested",
                    "pending_retry_json",
                ]
            },
        ),
        ("Idempotency", {"classes": ["collapse"], "fields": ["idempotency_key", "request_fingerprint"]}),
        ("Definition run", {"classes": ["collapse"], "fields": ["definition_json"]}),
    ]
    readonly_fields = [
        "workspace_column",
        "connector_column",
        "contact_column",
        "input_json",
        "output_json",
        "notes_json",
        "pending_retry_json",
        "definition_json",
    ]

    def get_queryset(self, request):
        # The connector's name, not its definition; counts and date queries drop select_related (no joins).
        return super().get_queryset(request).select_related("connector", "workspace").defer(*CONNECTOR_BULK)

    def has_rerun_permission(self, request) -> bool:
        return request.user.has_perm("executions.add_execution")

    @admin.display(description="Connector", ordering="connector__name")
    def connector_column(self, execution: Execution):
        return format_html(
            "{} {}",
            admin_link("connectors_connector", execution.connector_id, execution.connector.name),
            changelist_link("executions_execution", "(runs)", connector=execution.connector_id),
        )

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, execution: Execution):
        return format_html(
            "{} {}",
            admin_link("workspaces_workspace", execution.workspace_id, execution.workspace.name),
            changelist_link("executions_execution", "(runs)", workspace=execution.workspace_id),
        )

    @admin.display(description="Contact")
    def contact_column(self, execution: Execution):
        return admin_link("contacts_contact", execution.contact_id, execution.contact_id)

    @admin.display(description="Input")
    def input_json(self, execution: Execution):
        return pretty_json(execution.input)

    @admin.display(description="Output")
    def output_json(self, execution: Execution):
        return pretty_json(execution.output)

    @admin.display(description="Notes")
    def notes_json(self, execution: Execution):
        if not execution.notes:
            return EMPTY
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((note,) for note in execution.notes)))

    @admin.display(description="Pending retry")
    def pending_retry_json(self, execution: Execution):
        return pretty_json(execution.pending_retry) if execution.pending_retry else EMPTY

    @admin.display(description="Definition (as run)")
    def definition_json(self, execution: Execution):
        return pretty_json(execution.definition)

    @admin.action(description="Re-run selected failed executions", permissions=["rerun"])
    def rerun_failed(self, request, queryset):
        result = executions_rerun_failed(queryset=queryset)
        self.message_user(request, f"Queued {len(result.created)} new execution(s).", messages.SUCCESS)
        skipped = {
            "did not fail": result.not_failed,
            "connector is inactive": result.inactive,
            "input no longer matches the input schema": result.invalid_input,
            "workspace is past its monthly quota": result.over_quota,
        }
        details = ", ".join(f"{count} {reason}" for reason, count in skipped.items() if count)
        if details:
            self.message_user(request, f"Skipped: {details}.", messages.WARNING)


@admin.register(ExecutionStep)
class ExecutionStepAdmin(StepTraceMixin, UUIDSearchMixin, ListDeferMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every step of every execution, e.g. to find the failed steps of one connector; read only."""

    list_display = ["execution_column", "index", "name", "status", "attempts", "duration_ms", "started_at"]
    list_filter = ["status"]
    search_fields = ["=name"]
    uuid_search_fields = ("execution_id",)
    search_help_text = "An execution id, or a step name."
    ordering = ["-id"]
    list_deferred = ("request", "response", "extracted", "error")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would aggregate the whole table
    paginator = LargeTablePaginator
    list_per_page = 50
    raw_id_fields = ["execution"]
    fields = [
        "execution_column",
        "index",
        "name",
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "duration_ms",
        "error",
        "request_json",
        "response_json",
        "extracted_json",
    ]
    readonly_fields = ["execution_column", "request_json", "response_json", "extracted_json"]

    @admin.display(description="Execution", ordering="execution_id")
    def execution_column(self, step: ExecutionStep):
        return admin_link("executions_execution", step.execution_id, step.execution_id)

    @admin.display(description="Extracted")
    def extracted_json(self, step: ExecutionStep):
        return pretty_json(step.extracted)


@admin.register(ConnectorDailyStats)
class ConnectorDailyStatsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The per-connector daily rollup the dashboard charts read; maintained by the execution lifecycle."""

    list_display = [
        "date",
        "connector_column",
        "workspace_column",
        "succeeded",
        "failed",
        "avg_duration_ms",
        "total_duration_ms",
    ]
    date_hierarchy = "date"
    search_fields = ["connector__name", "workspace__name"]
    ordering = ["-date", "connector_id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would aggregate the whole table
    paginator = LargeTablePaginator
    raw_id_fields = ["connector", "workspace"]
    fields = [
        "date",
        "connector_column",
        "workspace_column",
        "succeeded",
        "failed",
        "total_duration_ms",
        "avg_duration_ms",
    ]
    readonly_fields = ["connector_column", "workspace_column", "avg_duration_ms"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("connector", "workspace").defer(*CONNECTOR_BULK)

    @admin.display(description="Connector", ordering="connector__name")
    def connector_column(self, stats: ConnectorDailyStats):
        return admin_link("connectors_connector", stats.connector_id, stats.connector.name)

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, stats: ConnectorDailyStats):
        return admin_link("workspaces_workspace", stats.workspace_id, stats.workspace.name)

    @admin.display(description="Avg duration (ms)")
    def avg_duration_ms(self, stats: ConnectorDailyStats):
        finished = stats.succeeded + stats.failed
        return round(stats.total_duration_ms / finished) if finished else EMPTY
