"""Writes to connectors. Definitions arrive validated and normalized by `connectors.validation`."""

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet

from connectors.models import DEFINITION_FIELDS, Connector
from core.changes import save_changes
from workspaces.models import Workspace

if TYPE_CHECKING:  # templates_market imports this module
    from templates_market.models import ConnectorTemplate

EDITABLE_FIELDS = ("name", "description", "is_active", *DEFINITION_FIELDS)


@transaction.atomic
def connector_create(
    *, workspace: Workspace, data: dict[str, Any], template: "ConnectorTemplate | None" = None
) -> Connector:
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    return Connector.objects.create(
        workspace=workspace,
        template=template,
        template_version=template.version if template else None,
        **fields,
    )


@transaction.atomic
def connector_update(*, connector: Connector, data: dict[str, Any]) -> Connector:
    """Applies the given fields; `version` goes up by one when any part of the definition changes."""
    save_changes(connector, data, editable=EDITABLE_FIELDS, versioned=DEFINITION_FIELDS)
    return connector


@transaction.atomic
def connector_set_active(*, connector: Connector, is_active: bool) -> Connector:
    return connector_update(connector=connector, data={"is_active": is_active})


def connectors_set_active(*, queryset: QuerySet[Connector], is_active: bool) -> int:
    """Activates or deactivates every connector of `queryset` through `connector_set_active`; returns how many
    changed (those already in that state are left alone)."""
    changed = 0
    selected = Connector.objects.filter(pk__in=queryset.order_by().values("pk"), is_active=not is_active)
    for connector in selected.iterator():
        connector_set_active(connector=connector, is_active=is_active)
        changed += 1
    return changed
