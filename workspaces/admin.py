"""Users, workspaces and memberships in the SaaS console.

Counts shown in lists are correlated subqueries from `workspaces.selectors` (the same ones the admin API uses),
so a page of workspaces or users costs a fixed number of queries however many rows it has.
"""

from collections import defaultdict

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.admin_tools import ReadOnlyAdminMixin, UUIDSearchMixin, admin_link, changelist_link
from usage import admin as usage_admin
from workspaces import services
from workspaces.api_keys import api_key_revoke
from workspaces.models import ApiKey, Membership, Role, User, Workspace
from workspaces.selectors import users_with_workspace_count, workspaces_with_activity

LAST_OWNER_MESSAGE = "Workspace {} would be left without an owner; make someone else owner first."


def workspaces_left_without_owner(*, leaving: dict, arriving: dict) -> list:
    """The workspaces in which every owner membership is in `leaving` (workspace id -> membership pks that stop
    being owners) and none is in `arriving` (workspace id -> number of new owners): the rule the API enforces
    for the last owner (docs/api.md §3), kept for staff too."""
    orphaned = []
    for workspace_id, pks in leaving.items():
        remaining = Membership.objects.filter(workspace_id=workspace_id, role=Role.OWNER).exclude(pk__in=pks)
        if not arriving.get(workspace_id) and not remaining.exists():
            orphaned.append(workspace_id)
    return orphaned


def _ownership_changes(forms_and_deleted) -> tuple[dict, dict]:
    leaving, arriving = defaultdict(set), defaultdict(int)
    for form, deleted in forms_and_deleted:
        stored = form.instance
        was_owner = stored.pk is not None and form.initial.get("role") == Role.OWNER
        workspace = form.cleaned_data.get("workspace") or getattr(stored, "workspace", None)
        stays_owner = not deleted and form.cleaned_data.get("role") == Role.OWNER
        if was_owner and not stays_owner:
            leaving[form.initial.get("workspace") or stored.workspace_id].add(stored.pk)
        if stays_owner and not was_owner and workspace is not None:
            arriving[workspace.pk] += 1
    return leaving, arriving


def staff_save_membership(instance: Membership) -> Membership:
    """Saves a membership edited by staff through the workspaces services (so it is audited); a membership
    moved to another user or workspace is removed there and added here."""
    stored = Membership.objects.filter(pk=instance.pk).first() if instance.pk else None
    if stored is not None and (stored.workspace_id, stored.user_id) != (instance.workspace_id, instance.user_id):
        services.member_delete(membership=stored)
    change = services.member_set(
        workspace=instance.workspace, user=instance.user, role=instance.role, keep_an_owner=False
    )
    return change.membership


class LastOwnerGuardFormSet(forms.BaseInlineFormSet):
    """Refuses a save that removes or demotes the last owner of a workspace; saves through the services."""

    def save_new(self, form, commit=True):
        setattr(form.instance, self.fk.name, self.instance)
        return staff_save_membership(form.instance)

    def save_existing(self, form, obj, commit=True):
        return staff_save_membership(form.instance)

    def delete_existing(self, obj, commit=True):
        if commit:
            services.member_delete(membership=obj)

    def clean(self):
        super().clean()
        changes = [(form, self._should_delete_form(form)) for form in self.forms if form.has_changed()]
        changes = [(form, deleted) for form, deleted in changes if hasattr(form, "cleaned_data")]
        leaving, arriving = _ownership_changes(changes)
        orphaned = workspaces_left_without_owner(leaving=leaving, arriving=arriving)
        if orphaned:
            names = Workspace.objects.filter(pk__in=orphaned).values_list("name", flat=True)
            raise ValidationError([LAST_OWNER_MESSAGE.format(name) for name in names])


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "workspace", "role"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None and self.has_changed():
            moved = cleaned.get("workspace") is not None and cleaned["workspace"].pk != self.instance.workspace_id
            leaving, arriving = _ownership_changes([(self, moved)])
            if workspaces_left_without_owner(leaving=leaving, arriving=arriving):
                raise ValidationError(LAST_OWNER_MESSAGE.format(self.instance.workspace))
        return cleaned


class UserMembershipInline(admin.TabularInline):
    model = Membership
    formset = LastOwnerGuardFormSet
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
    formset = LastOwnerGuardFormSet
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
    inlines = [WorkspaceMembershipInline, *usage_admin.WORKSPACE_INLINES]

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
    form = MembershipForm
    list_display = ["user", "workspace_column", "role", "created_at"]
    list_filter = ["role", "created_at"]
    search_fields = ["user__email", "workspace__name"]
    list_select_related = ["user", "workspace"]
    raw_id_fields = ["user", "workspace"]
    ordering = ["-created_at", "-id"]

    def save_model(self, request, obj, form, change):
        saved = staff_save_membership(obj)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.member_delete(membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            services.member_delete(membership=membership)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        leaving = defaultdict(set)
        for membership in objs:
            if membership.role == Role.OWNER:
                leaving[membership.workspace_id].add(membership.pk)
        orphaned = workspaces_left_without_owner(leaving=leaving, arriving={})
        protected += [f"{workspace}: its last owner" for workspace in Workspace.objects.filter(pk__in=orphaned)]
        return deleted, counts, perms_needed, protected

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, membership: Membership):
        return admin_link("workspaces_workspace", membership.workspace_id, membership.workspace.name)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Keys per workspace (filter or search by workspace); the key and its hash are never shown."""

    list_display = ["name", "prefix", "workspace_column", "role", "created_at", "last_used_at", "expires_at", "state"]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "workspace__name", "=workspace__id"]
    list_select_related = ["workspace"]
    fields = ["name", "prefix", "workspace", "role", "created_by", "created_at", "expires_at", "last_used_at"]
    fields += ["revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]
    ordering = ["-created_at"]

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, api_key: ApiKey):
        return admin_link("workspaces_workspace", api_key.workspace_id, api_key.workspace.name)

    @admin.display(description="State")
    def state(self, api_key: ApiKey) -> str:
        if api_key.revoked_at:
            return "revoked"
        if api_key.expires_at and api_key.expires_at <= timezone.now():
            return "expired"
        return "live"

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
        self.message_user(request, "Revoked.")
