"""Webhook endpoints and deliveries in the SaaS console; the signing secret and delivery bodies stay hidden
(a body holds the execution, which staff see on the execution's own page)."""

from django.contrib import admin

from core.admin_tools import LargeTablePaginator, ListDeferMixin, ReadOnlyAdminMixin, UUIDSearchMixin, admin_link
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_send_test


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(UUIDSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["url", "workspace_column", "events", "connector_column", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "workspace__name"]
    uuid_search_fields = ("pk", "workspace_id", "connector_id")
    list_select_related = ["workspace", "connector"]
    fields = ["id", "url", "events", "workspace", "connector", "is_active", "created_at", "updated_at"]
    readonly_fields = fields
    actions = ["send_test_event"]
    ordering = ["-created_at"]

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, endpoint: WebhookEndpoint):
        return admin_link("workspaces_workspace", endpoint.workspace_id, endpoint.workspace.name)

    @admin.display(description="Connector")
    def connector_column(self, endpoint: WebhookEndpoint):
        return (
            admin_link("connectors_connector", endpoint.connector_id, endpoint.connector)
            if endpoint.connector
            else "all"
        )

    @admin.action(description="Send a test event to the selected endpoints")
    def send_test_event(self, request, queryset):
        for endpoint in queryset:
            endpoint_send_test(endpoint=endpoint)
        self.message_user(request, "Test events queued; see the deliveries.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(UUIDSearchMixin, ListDeferMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "status",
        "endpoint_column",
        "execution_column",
        "attempts",
        "response_status_code",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event"]
    uuid_search_fields = ("pk", "endpoint_id", "execution_id", "workspace_id")
    search_fields = ["endpoint__url", "message_id"]
    list_select_related = ["endpoint"]
    list_deferred = ("body",)
    show_full_result_count = False
    paginator = LargeTablePaginator
    ordering = ["-created_at"]
    fields = ["id", "message_id", "event", "status", "endpoint", "execution", "workspace", "attempts"]
    fields += ["response_status_code", "last_error", "last_attempt_at", "next_attempt_at", "created_at"]
    readonly_fields = fields

    @admin.display(description="Endpoint")
    def endpoint_column(self, delivery: WebhookDelivery):
        return admin_link("webhooks_webhookendpoint", delivery.endpoint_id, delivery.endpoint.url)

    @admin.display(description="Execution")
    def execution_column(self, delivery: WebhookDelivery):
        return admin_link("executions_execution", delivery.execution_id, delivery.execution_id)
