"""Reads of the template marketplace: what a user may see, the catalogue filters, and missing credentials."""

from django.db.models import F, Q, QuerySet

from credentials.models import Credential
from templates_market.models import ConnectorTemplate
from workspaces.models import Workspace

# ?ordering= value -> ORDER BY; `name` and `id` break ties so pages never overlap.
ORDERINGS = {
    "name": ("name", "id"),
    "-rating_average": (F("rating_average").desc(nulls_last=True), "-rating_count", "name", "id"),
    "-install_count": ("-install_count", "name", "id"),
    "-created_at": ("-created_at", "id"),
}
DEFAULT_ORDERING = "name"


class UnknownOrdering(ValueError):
    pass


def templates_visible_to(user) -> QuerySet[ConnectorTemplate]:
    """Staff see every template; everyone else the public ones only."""
    queryset = ConnectorTemplate.objects.all()
    if not user.is_staff:
        queryset = queryset.filter(is_public=True)
    return queryset


def template_list(
    *,
    user,
    search: str = "",
    category: str = "",
    featured: bool | None = None,
    official: bool | None = None,
    ordering: str = DEFAULT_ORDERING,
) -> QuerySet[ConnectorTemplate]:
    """The catalogue as `user` sees it. Raises UnknownOrdering for an `ordering` not in ORDERINGS.

    `search` matches name, description or any tag (case-insensitive substring); `category` is matched
    case-insensitively.
    """
    if ordering not in ORDERINGS:
        raise UnknownOrdering(ordering)
    queryset = templates_visible_to(user)
    search = search.strip()
    if search:
        # `tags__icontains` matches inside the JSON text of the list: a substring of any tag, on PostgreSQL
        # and SQLite alike.
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(description__icontains=search) | Q(tags__icontains=search)
        )
    category = category.strip()
    if category:
        queryset = queryset.filter(category__iexact=category)
    if featured is not None:
        queryset = queryset.filter(is_featured=featured)
    if official is not None:
        queryset = queryset.filter(is_official=official)
    return queryset.order_by(*ORDERINGS[ordering])


def required_service_names(template: ConnectorTemplate) -> list[str]:
    return [item["service_name"] for item in template.required_credentials]


def missing_credentials(*, template: ConnectorTemplate, workspace: Workspace) -> list[str]:
    """The template's required services (in the template's order) that `workspace` holds no credential for."""
    required = required_service_names(template)
    if not required:
        return []
    present = set(
        Credential.objects.filter(workspace=workspace, service_name__in=required).values_list("service_name", flat=True)
    )
    return [name for name in required if name not in present]
