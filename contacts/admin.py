from django.contrib import admin

from contacts.models import Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "phone", "company", "phone_valid", "workspace", "created_at"]
    list_filter = ["phone_valid", "created_at"]
    search_fields = ["email", "phone", "first_name", "last_name", "company", "workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace"]
    readonly_fields = ["id", "created_at", "updated_at"]
