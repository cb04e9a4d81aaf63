"""The vault in the SaaS console: which workspace holds a credential for which service, and nothing secret.

Credentials are read-only here (staff may delete one, e.g. on a customer's request): no page shows a value or
the ciphertext, and no form can set one. Values are only ever written through the API by the workspace itself.
"""

from django.contrib import admin

from credentials.models import Credential


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = [
        "service_name",
        "workspace",
        "type",
        "field_list",
        "key_id",
        "created_at",
        "updated_at",
        "last_used_at",
    ]
    list_filter = ["type", "key_id", "created_at", "last_used_at"]
    search_fields = ["service_name", "workspace__name", "=workspace__id"]
    list_select_related = ["workspace"]
    ordering = ["workspace__name", "service_name"]
    # The ciphertext is not a field of any admin page or form.
    fields = [
        "workspace",
        "service_name",
        "type",
        "field_list",
        "rate_limit",
        "token_expires_at",
        "key_id",
        "created_at",
        "updated_at",
        "last_used_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("ciphertext", "token_ciphertext")

    @admin.display(description="fields")
    def field_list(self, credential: Credential) -> str:
        return ", ".join(credential.field_names)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
