"""Users, workspaces and memberships in the SaaS console.

Counts shown in lists are correlated subqueries from `console.selectors` (the same ones the admin API uses),
so a page of workspaces or users costs a fixed number of queries however many rows it has.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from console.admin_tools import UUIDSearchMixin, admin_link, changelist_link
from console.selectors import users_with_workspace_count, workspaces_with_activity
from workspaces.models import Membership, User, Workspace


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    raw_id_fields = ["workspace"]
    fields = ["workspace", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "full_name",
        "workspaces_column",
        "is_staff",
        "is_superuser",
        "is_active",
        "date_joined",
        "last_login",
    ]
    list_filter = ["is_staff", "is_superuser", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["date_joined", "last_login"]
    date_hierarchy = "date_joined"
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    inlines = [UserMembershipInline]

    def get_queryset(self, request):
        return users_with_workspace_count()

    @admin.display(description="Workspaces", ordering="workspace_count")
    def workspaces_column(self, user: User):
        return changelist_link("workspaces_membership", user.workspace_count, user__id__exact=user.pk)


class WorkspaceMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "workspace"
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Workspace)
class WorkspaceAdmin(UUIDSearchMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "id",
        "members_column",
        "connectors_column",
        "executions_30d_column",
        "failed_30d",
        "last_execution_at",
        "created_at",
    ]
    search_fields = ["name"]
    search_help_text = "A workspace name or id."
    readonly_fields = [
        "id",
        "created_at",
        "members_column",
        "connectors_column",
        "executions_30d_column",
        "failed_30d",
        "last_execution_at",
    ]
    fieldsets = [
        (None, {"fields": ["id", "name", "created_at"]}),
        (
            "Activity",
            {
                "fields": [
                    "members_column",
                    "connectors_column",
                    "executions_30d_column",
                    "failed_30d",
                    "last_execution_at",
                ]
            },
        ),
    ]
    date_hierarchy = "created_at"
    ordering = ["name", "created_at"]
    inlines = [WorkspaceMembershipInline]

    def get_queryset(self, request):
        return workspaces_with_activity()

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj else [(None, {"fields": ["name"]})]

    @admin.display(description="Members", ordering="member_count")
    def members_column(self, workspace: Workspace):
        return changelist_link("workspaces_membership", workspace.member_count, workspace__id__exact=workspace.pk)

    @admin.display(description="Connectors", ordering="connector_count")
    def connectors_column(self, workspace: Workspace):
        return changelist_link("connectors_connector", workspace.connector_count, workspace__id__exact=workspace.pk)

    @admin.display(description="Executions (30 days)", ordering="executions_30d")
    def executions_30d_column(self, workspace: Workspace):
        return changelist_link("executions_execution", workspace.executions_30d, workspace=workspace.pk)

    @admin.display(description="Failed (30 days)", ordering="failed_30d")
    def failed_30d(self, workspace: Workspace) -> int:
        return workspace.failed_30d

    @admin.display(description="Last execution", ordering="last_execution_at")
    def last_execution_at(self, workspace: Workspace):
        return workspace.last_execution_at


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace_column", "role", "created_at"]
    list_filter = ["role", "created_at"]
    search_fields = ["user__email", "workspace__name"]
    list_select_related = ["user", "workspace"]
    raw_id_fields = ["user", "workspace"]
    ordering = ["-created_at", "-id"]

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, membership: Membership):
        return admin_link("workspaces_workspace", membership.workspace_id, membership.workspace.name)
