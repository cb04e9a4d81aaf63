"""Usage and quotas in the SaaS console: the quota is edited on the workspace page (through
`usage.services.quota_set`, so it is audited), usage is listed per workspace and month."""

from django import forms
from django.contrib import admin

from core.admin_tools import admin_link
from usage.models import MonthlyUsage, WorkspaceQuota
from usage.selectors import with_http_requests
from usage.services import quota_set


class QuotaFormSet(forms.BaseInlineFormSet):
    """Saves through the service instead of the model, so every change is validated and audited."""

    def save_new(self, form, commit=True):
        return quota_set(workspace=self.instance, executions_per_month=form.cleaned_data["executions_per_month"])

    def save_existing(self, form, obj, commit=True):
        return quota_set(workspace=self.instance, executions_per_month=form.cleaned_data["executions_per_month"])


class WorkspaceQuotaInline(admin.StackedInline):
    model = WorkspaceQuota
    formset = QuotaFormSet
    can_delete = False
    extra = 1
    max_num = 1
    fields = ["executions_per_month", "updated_at"]
    readonly_fields = ["updated_at"]
    verbose_name = verbose_name_plural = "Monthly execution quota"


class MonthlyUsageInline(admin.TabularInline):
    model = MonthlyUsage
    fields = ["month", "executions", "http_requests"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    ordering = ["-month"]
    verbose_name_plural = "Usage by month"

    def get_queryset(self, request):
        return with_http_requests(super().get_queryset(request))

    @admin.display(description="HTTP requests")
    def http_requests(self, usage: MonthlyUsage) -> int:
        return usage.http_requests  # type: ignore[attr-defined] - annotated by with_http_requests

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


WORKSPACE_INLINES = [WorkspaceQuotaInline, MonthlyUsageInline]


@admin.register(MonthlyUsage)
class MonthlyUsageAdmin(admin.ModelAdmin):
    list_display = ["month", "workspace_column", "executions", "http_requests", "quota_column"]
    list_filter = ["month"]
    search_fields = ["=workspace__id", "workspace__name"]
    list_select_related = ["workspace", "workspace__quota"]
    ordering = ["-month", "-executions"]
    show_full_result_count = False
    readonly_fields = ["workspace", "month", "executions", "http_requests"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return with_http_requests(super().get_queryset(request))

    @admin.display(description="HTTP requests", ordering="http_requests")
    def http_requests(self, usage: MonthlyUsage) -> int:
        return usage.http_requests  # type: ignore[attr-defined] - annotated by with_http_requests

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, usage: MonthlyUsage):
        return admin_link("workspaces_workspace", usage.workspace_id, usage.workspace.name)

    @admin.display(description="Quota (executions / month)")
    def quota_column(self, usage: MonthlyUsage):
        quota = getattr(usage.workspace, "quota", None)
        return "unlimited" if quota is None or quota.executions_per_month is None else quota.executions_per_month
