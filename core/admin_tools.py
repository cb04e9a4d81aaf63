"""Building blocks shared by the apps' admin classes: the console's conventions in one place (used by every app's
admin.py; `console/` only adds the site and the dashboard on top).

- `LargeTablePaginator`: no `COUNT(*)` over a whole big table on every changelist page.
- `UUIDSearchMixin`: a pasted id finds the row through an index instead of a text scan.
- `ListDeferMixin`: big JSON columns stay out of list queries.
- `ReadOnlyAdminMixin`: records (executions, rollups) are looked at, never edited.
- `pretty_json` / `admin_link`: escaped HTML for detail pages and columns.
"""

import json
import uuid
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

EMPTY = "-"


class LargeTablePaginator(Paginator):
    """Uses PostgreSQL's row estimate (`pg_class.reltuples`) instead of `COUNT(*)` for an unfiltered table
    whose estimate is at least `ESTIMATE_FROM` rows; filtered lists, small tables and other databases count
    exactly. Either way the page costs a fixed number of queries.

    Adapted from healthchecks' hc/api/admin.py `LargeTablePaginator`.
    """

    ESTIMATE_FROM = 50_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = self._estimate(queryset)
            if estimate >= self.ESTIMATE_FROM:
                return estimate
        return queryset.count()

    @staticmethod
    def _estimate(queryset) -> int:
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        # -1 means "never analyzed" on PostgreSQL 14+.
        return int(row[0]) if row and row[0] is not None else 0


class UUIDSearchMixin:
    """Searching for a UUID matches it exactly against `uuid_search_fields` (indexed id columns); any other
    term goes to the usual `search_fields` text search."""

    uuid_search_fields: tuple[str, ...] = ("pk",)

    def get_search_results(self, request, queryset, search_term):
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        match = Q()
        for field in self.uuid_search_fields:
            match |= Q(**{field: value})
        return queryset.filter(match), False


class ListDeferMixin:
    """Leaves `list_deferred` columns (big JSON and text) out of the changelist query; detail pages and
    actions re-read what they need."""

    list_deferred: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        deferred = self.list_deferred

        class DeferringChangeList(ChangeList):
            def get_queryset(self, request, exclude_parameters=None):
                return super().get_queryset(request, exclude_parameters).defer(*deferred)

        return DeferringChangeList


class ReadOnlyAdminMixin:
    """A record: listed and shown, never added or changed here (deleting stays with those allowed to)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def pretty_json(value: Any) -> SafeString:
    """`value` as indented JSON in a scrollable <pre>, escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return format_html(
        '<pre class="console-json" style="margin:0;max-height:32em;max-width:60em;overflow:auto;'
        'white-space:pre-wrap;overflow-wrap:anywhere">{}</pre>',
        text,
    )


def admin_link(model_admin_name: str, object_id: Any, text: Any) -> SafeString | str:
    """A link to the change page of `object_id` in admin `model_admin_name` ("app_model"), or "-" without id."""
    if object_id is None:
        return EMPTY
    url = reverse(f"admin:{model_admin_name}_change", args=[object_id])
    return format_html('<a href="{}">{}</a>', url, text)


def changelist_link(model_admin_name: str, text: Any, **filters: Any) -> SafeString:
    """A link to the changelist of admin `model_admin_name` ("app_model") filtered by `filters`."""
    url = reverse(f"admin:{model_admin_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), text)
