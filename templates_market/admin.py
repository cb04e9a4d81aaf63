"""The marketplace in the SaaS console.

Template edits go through the same validation (the connector validator for `definition`) and the same services
as the staff API, so `version` is bumped by the same rule. Ratings are read-only here; deleting one (e.g. an
abusive review) recomputes the template's rating summary.
"""

import re

from django import forms
from django.contrib import admin, messages

from templates_market import services
from templates_market.models import ConnectorTemplate, TemplateRating
from templates_market.serializers import ConnectorTemplateSerializer, error_paths

VALIDATED_FIELDS = services.EDITABLE_FIELDS


class ConnectorTemplateForm(forms.ModelForm):
    class Meta:
        model = ConnectorTemplate
        fields = list(VALIDATED_FIELDS)

    def clean(self):
        cleaned = super().clean()
        if any(name in self.errors for name in VALIDATED_FIELDS):
            return cleaned
        instance = self.instance if self.instance.pk and not self.instance._state.adding else None
        data = {name: cleaned.get(name) for name in VALIDATED_FIELDS}
        for name, empty in (
            ("description", ""),
            ("category", ""),
            ("tags", []),
            ("required_credentials", []),
        ):
            if data[name] is None:
                data[name] = empty
        serializer = ConnectorTemplateSerializer(instance, data=data)
        if serializer.is_valid():
            self.validated_data = {name: serializer.validated_data[name] for name in VALIDATED_FIELDS}
            # The normalized definition (every default filled in) is what gets stored.
            cleaned.update(self.validated_data)
            return cleaned
        for where, message in error_paths(serializer.errors):
            field, rest = re.match(r"^([A-Za-z_]*)\.?(.*)$", where).groups()
            if field not in self.fields:
                field, rest = None, where
            self.add_error(field, f"{rest}: {message}" if rest else message)
        return cleaned


@admin.register(ConnectorTemplate)
class ConnectorTemplateAdmin(admin.ModelAdmin):
    form = ConnectorTemplateForm
    list_display = [
        "name",
        "category",
        "is_public",
        "is_featured",
        "is_official",
        "version",
        "install_count",
        "rating_average",
        "rating_count",
        "updated_at",
    ]
    list_filter = ["is_public", "is_featured", "is_official", "category"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "id",
        "author",
        "version",
        "install_count",
        "rating_average",
        "rating_count",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["id", "name", "slug", "description", "category", "tags", "author"]}),
        ("Definition", {"fields": ["definition", "required_credentials"]}),
        ("Flags", {"fields": ["is_public", "is_featured", "is_official"]}),
        (
            "Usage",
            {
                "fields": [
                    "version",
                    "install_count",
                    "rating_average",
                    "rating_count",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    actions = ["feature", "unfeature", "mark_official", "unmark_official"]

    def save_model(self, request, obj, form, change):
        if change:
            services.template_update(template=obj, data=form.validated_data)
        else:
            created = services.template_create(data=form.validated_data, author=request.user)
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.template_delete(template=obj)

    def delete_queryset(self, request, queryset):
        for template in queryset:
            services.template_delete(template=template)

    def _set_flags(self, request, queryset, **flags) -> None:
        changed = services.templates_bulk_set_flags(queryset=queryset, **flags)
        self.message_user(request, f"{changed} template(s) updated.", messages.SUCCESS)

    @admin.action(description="Feature selected templates")
    def feature(self, request, queryset):
        self._set_flags(request, queryset, is_featured=True)

    @admin.action(description="Stop featuring selected templates")
    def unfeature(self, request, queryset):
        self._set_flags(request, queryset, is_featured=False)

    @admin.action(description="Mark selected templates official")
    def mark_official(self, request, queryset):
        self._set_flags(request, queryset, is_official=True)

    @admin.action(description="Unmark selected templates as official")
    def unmark_official(self, request, queryset):
        self._set_flags(request, queryset, is_official=False)


@admin.register(TemplateRating)
class TemplateRatingAdmin(admin.ModelAdmin):
    list_display = ["template", "user", "rating", "created_at", "updated_at"]
    list_filter = ["rating"]
    search_fields = ["template__name", "user__email", "review"]
    list_select_related = ["template", "user"]
    raw_id_fields = ["template", "user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.template_ratings_delete(queryset=TemplateRating.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        services.template_ratings_delete(queryset=queryset)
