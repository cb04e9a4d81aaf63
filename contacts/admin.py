"""Contacts in the SaaS console: searchable across workspaces; a contact stays in the workspace it was made in."""

from django.contrib import admin

from contacts import services
from contacts.models import Contact
from core.admin_tools import LargeTablePaginator, UUIDSearchMixin, admin_link


@admin.register(Contact)
class ContactAdmin(UUIDSearchMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "email",
        "phone",
        "company",
        "phone_valid",
        "workspace_column",
        "created_at",
        "updated_at",
    ]
    list_filter = ["phone_valid", "created_at"]
    search_fields = ["email", "phone", "first_name", "last_name", "company", "workspace__name"]
    uuid_search_fields = ("pk", "workspace_id")
    search_help_text = "Email, phone, name, company or workspace name; or a contact or workspace id."
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would aggregate the whole table
    paginator = LargeTablePaginator
    fields = [
        "id",
        "workspace",
        "email",
        "phone",
        "first_name",
        "last_name",
        "company",
        "job_title",
        "phone_valid",
        "custom_fields",
        "created_at",
        "updated_at",
    ]
    readonly_fields = ["id", "created_at", "updated_at", "workspace_column"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return [name for name in self.fields if name not in ("id", "created_at", "updated_at")]
        # An existing contact keeps its workspace: executions and mappings refer to it there.
        return ["workspace_column" if name == "workspace" else name for name in self.fields]

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in form.changed_data if name != "workspace"}
        if not change:
            created = services.contact_create(workspace=form.cleaned_data["workspace"], **values)
            # The admin logs and redirects to `obj`: make it the stored contact.
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        if values:
            services.contact_update(contact=Contact.objects.get(pk=obj.pk), **values)

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_column(self, contact: Contact):
        return admin_link("workspaces_workspace", contact.workspace_id, contact.workspace.name)
