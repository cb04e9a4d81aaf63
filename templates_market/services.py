"""Writes to the template marketplace: staff curation, installs and ratings.

Data reaching these functions is already validated by `templates_market.serializers` (the definition by the
connector validator). `version` counts changes to what an installed connector depends on: the definition and
the required credentials. Installed connectors remember the version they were copied from, which is how
`template_update_available` is computed.
"""

import re
from typing import Any
from uuid import UUID

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, F, QuerySet
from django.utils import timezone

from audit import services as audit
from connectors.models import Connector
from connectors.selectors import missing_services
from connectors.services import connector_create, connector_replace_definition, revalidated
from connectors.validation import DefinitionSerializer
from core.changes import save_changes
from core.exceptions import Conflict, InvalidInput
from templates_market.models import ConnectorTemplate, TemplateRating
from templates_market.selectors import missing_credentials, required_service_names, templates_visible_to
from templates_market.serializers import default_slug, plain
from workspaces.models import User, Workspace

EDITABLE_FIELDS = (
    "name",
    "slug",
    "description",
    "category",
    "tags",
    "definition",
    "required_credentials",
    "is_public",
    "is_featured",
    "is_official",
)
# Changing any of these bumps `version`: they are what an installed connector was built from.
VERSIONED_FIELDS = ("definition", "required_credentials")
FLAG_FIELDS = ("is_public", "is_featured", "is_official")
CONNECTOR_NAME_LENGTH = 200


def _unique_slug(base: str) -> str:
    taken = set(ConnectorTemplate.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


@transaction.atomic
def template_create(*, data: dict[str, Any], author: User | None = None) -> ConnectorTemplate:
    """Creates a template from validated data. Without a `slug` one is derived from the name.

    Raises InvalidInput (field `slug`) when the slug is taken, also when a concurrent write took it first.
    """
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    fields.setdefault("slug", _unique_slug(default_slug(fields["name"])))
    try:
        with transaction.atomic():
            return ConnectorTemplate.objects.create(author=author, **fields)
    except IntegrityError:
        raise InvalidInput("A template with this slug exists.", field="slug") from None


@transaction.atomic
def template_update(*, template: ConnectorTemplate, data: dict[str, Any]) -> ConnectorTemplate:
    """Applies the given fields; `version` goes up by one when the definition or required credentials change.

    The row is locked while it is compared and written, so two concurrent edits each bump the version.
    Raises InvalidInput (field `slug`) when the new slug is taken.
    """
    current = ConnectorTemplate.objects.select_for_update().get(pk=template.pk)
    try:
        with transaction.atomic():
            save_changes(current, data, editable=EDITABLE_FIELDS, versioned=VERSIONED_FIELDS)
    except IntegrityError:
        raise InvalidInput("A template with this slug exists.", field="slug") from None
    return current


@transaction.atomic
def template_set_flags(*, template: ConnectorTemplate, **flags: bool) -> ConnectorTemplate:
    """Sets any of is_public, is_featured, is_official; flags never change `version`."""
    unknown = set(flags) - set(FLAG_FIELDS)
    if unknown:
        raise TypeError(f"Not a template flag: {', '.join(sorted(unknown))}")
    return template_update(template=template, data=flags)


def templates_bulk_set_flags(*, queryset: QuerySet[ConnectorTemplate], **flags: bool) -> int:
    """Sets flags on many templates at once (admin actions); returns how many rows changed."""
    unknown = set(flags) - set(FLAG_FIELDS)
    if unknown:
        raise TypeError(f"Not a template flag: {', '.join(sorted(unknown))}")
    return queryset.update(**flags, updated_at=timezone.now())


@transaction.atomic
def template_delete(*, template: ConnectorTemplate) -> None:
    """Deletes the template and its ratings. Installed connectors keep working, unlinked (template=null)."""
    template.delete()


def _distinct_connector_name(*, workspace: Workspace, wanted: str) -> str:
    """`wanted`, or `wanted (2)`, `wanted (3)`... whichever is the first not used in the workspace."""
    wanted = wanted[:CONNECTOR_NAME_LENGTH]
    # Leave room for the longest suffix we could need, so the result always fits the column.
    base = wanted[: CONNECTOR_NAME_LENGTH - 8]
    taken = set(Connector.objects.filter(workspace=workspace, name__startswith=base).values_list("name", flat=True))
    if wanted not in taken:
        return wanted
    suffix = re.compile(rf"^{re.escape(base)} \((\d+)\)$")
    used = {int(match.group(1)) for name in taken if (match := suffix.match(name))}
    number = 2
    while number in used:
        number += 1
    return f"{base} ({number})"


@transaction.atomic
def template_install(
    *, template: ConnectorTemplate, workspace: Workspace, name: str | None = None, user: User | None = None
) -> tuple[Connector, list[str]]:
    """Copies the template into a new connector of `workspace`.

    Returns the connector (linked to the template and its current version) and the required services the
    workspace holds no credential for. The connector's name is `name` (default: the template's name), made
    distinct within the workspace with a " (2)", " (3)"... suffix. `install_count` goes up by exactly one.

    Installs into one workspace are serialized on the workspace row, so concurrent installs get distinct
    names.
    Raises Conflict when the stored definition no longer passes the connector validator.
    """
    Workspace.objects.select_for_update().only("id").get(pk=workspace.pk)
    serializer = DefinitionSerializer(data=template.definition)
    if not serializer.is_valid():
        raise Conflict(
            "This template's definition is no longer valid; it cannot be installed until staff fix it.",
            code="template_invalid",
        )
    connector_name = _distinct_connector_name(workspace=workspace, wanted=(name or template.name).strip())
    connector = connector_create(
        workspace=workspace,
        data={
            "name": connector_name,
            "description": template.description,
            "is_active": True,
            **plain(serializer.validated_data),
        },
        template=template,
        created_by=user,
    )
    ConnectorTemplate.objects.filter(pk=template.pk).update(install_count=F("install_count") + 1)
    audit.record(
        workspace_id=workspace.pk,
        action="template.installed",
        target=template,
        target_type="template",
        details={"connector_id": str(connector.pk)},
    )
    return connector, missing_credentials(template=template, workspace=workspace)


@transaction.atomic
def connector_update_from_template(*, connector: Connector, user: User | None) -> tuple[Connector, list[str]]:
    """Gives the connector its template's current definition as a new version (name, description, active flag
    and id stay), and returns it with the template's required services the workspace has no credential for.

    Raises Conflict when the connector has no template (never installed from one, or the template was
    deleted), the template is no longer visible to `user` (made private), the connector is already at the
    template's version, or the template's definition no longer passes the validator.
    """
    locked = Connector.objects.select_for_update(of=("self",)).get(pk=connector.pk)
    if locked.template_id is None:
        raise Conflict(
            "This connector is not linked to a template: it was not installed from one, or its template was deleted.",
            code="no_template",
        )
    # A caller that is not a user (None) sees what non-staff see: public templates.
    template = templates_visible_to(user or AnonymousUser()).filter(pk=locked.template_id).first()
    if template is None:
        raise Conflict(
            "The template this connector was installed from is no longer public, so it cannot be updated from it.",
            code="template_unavailable",
        )
    if locked.template_version is not None and template.version <= locked.template_version:
        raise Conflict(
            f"The connector is already up to date with version {template.version} of its template.",
            code="up_to_date",
        )
    definition = revalidated(
        template.definition,
        message="This template's definition is no longer valid; the connector cannot be updated from it until "
        "staff fix it.",
        code="template_invalid",
    )
    updated = connector_replace_definition(
        connector=locked, definition=definition, user=user, template_version=template.version
    )
    missing = missing_services(workspace_id=updated.workspace_id, services=required_service_names(template))
    return updated, missing


def _recompute_rating(template_id: UUID) -> ConnectorTemplate:
    """Recomputes the rating summary from the ratings table; the caller holds the template row lock."""
    summary = TemplateRating.objects.filter(template_id=template_id).aggregate(average=Avg("rating"), count=Count("id"))
    average = round(summary["average"], 2) if summary["average"] is not None else None
    ConnectorTemplate.objects.filter(pk=template_id).update(rating_average=average, rating_count=summary["count"])
    return ConnectorTemplate.objects.get(pk=template_id)


@transaction.atomic
def template_rate(*, template: ConnectorTemplate, user: User, rating: int, review: str = "") -> ConnectorTemplate:
    """Records `user`'s rating (1..5) of the template, replacing an earlier one, and returns the template with
    its `rating_average` (rounded to 2 decimals, null with no ratings) and `rating_count` recomputed.

    The template row is locked first, so concurrent ratings (also by the same user) are applied one after the
    other and the summary always matches the ratings table.
    """
    if not 1 <= rating <= 5:
        raise InvalidInput("A rating is a whole number from 1 to 5.", field="rating")
    ConnectorTemplate.objects.select_for_update().only("id").get(pk=template.pk)
    TemplateRating.objects.update_or_create(
        template_id=template.pk, user=user, defaults={"rating": rating, "review": review}
    )
    return _recompute_rating(template.pk)


@transaction.atomic
def template_ratings_delete(*, queryset: QuerySet[TemplateRating]) -> int:
    """Deletes ratings (e.g. abusive reviews, from the admin) and recomputes the affected templates'
    summaries."""
    template_ids = sorted(set(queryset.values_list("template_id", flat=True)))
    # Lock in a fixed order so two deletions over overlapping templates cannot deadlock.
    list(ConnectorTemplate.objects.select_for_update().filter(pk__in=template_ids).order_by("pk").only("id"))
    deleted, _ = TemplateRating.objects.filter(pk__in=list(queryset.values_list("pk", flat=True))).delete()
    for template_id in template_ids:
        _recompute_rating(template_id)
    return deleted
