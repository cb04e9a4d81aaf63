"""Writes to connectors. Definitions arrive validated and normalized by `connectors.validation`.

Every write that raises `version` also appends the new version to `ConnectorVersion`, in the same transaction
and under a lock of the connector row, so the history has exactly one row per version and concurrent edits
each get their own (docs/api.md §14).
"""

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from audit import services as audit
from connectors.models import DEFINITION_FIELDS, Connector, ConnectorVersion
from connectors.selectors import missing_services, referenced_services
from connectors.validation import DefinitionSerializer
from core.changes import save_changes
from core.exceptions import Conflict
from workspaces.models import User, Workspace

if TYPE_CHECKING:
    from templates_market.models import ConnectorTemplate

if TYPE_CHECKING:  # templates_market imports this module
    from templates_market.models import ConnectorTemplate

EDITABLE_FIELDS = ("name", "description", "is_active", *DEFINITION_FIELDS)


@transaction.atomic
def connector_create(
    *,
    workspace: Workspace,
    data: dict[str, Any],
    template: "ConnectorTemplate | None" = None,
    created_by: User | None = None,
) -> Connector:
    """A new connector at version 1, with that version recorded as made by `created_by`."""
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    connector = Connector.objects.create(
        workspace=workspace,
        template=template,
        template_version=template.version if template else None,
        **fields,
    )
    _record_versions(connector, created_by=created_by)
    audit.record(workspace_id=workspace.pk, action="connector.created", target=connector)
    return connector


@transaction.atomic
def connector_update(*, connector: Connector, data: dict[str, Any], user: User | None = None) -> Connector:
    """Applies the given fields; `version` goes up by one when any part of the definition changes, and the new
    version is recorded as made by `user`. Returns the connector as saved."""
    return _save(connector, data, user=user)


@transaction.atomic
def connector_delete(*, connector: Connector) -> None:
    """Deletes the connector with its executions and statistics."""
    audit.record(workspace_id=connector.workspace_id, action="connector.deleted", target=connector)
    connector.delete()


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


@transaction.atomic
def connector_restore(*, connector: Connector, version: ConnectorVersion, user: User | None = None) -> Connector:
    """Makes `version`'s definition current as a new, higher version; history is never rewritten.

    Raises Conflict when that definition no longer passes today's validator.
    """
    definition = revalidated(
        version.definition,
        message=f"Version {version.version} no longer passes validation and cannot be restored; edit the "
        "connector instead.",
        code="version_invalid",
    )
    return _save(connector, definition, user=user, new_version=True)


@transaction.atomic
def connector_replace_definition(
    *, connector: Connector, definition: dict[str, Any], user: User | None = None, **extra: Any
) -> Connector:
    """Sets the whole definition (and the link fields in `extra`, e.g. template_version) as a new version,
    keeping name, description, active flag and id."""
    fields = {name: definition[name] for name in DEFINITION_FIELDS}
    return _save(connector, {**fields, **extra}, user=user, new_version=True, also=tuple(extra))


def revalidated(definition: dict[str, Any], *, message: str, code: str) -> dict[str, Any]:
    """`definition` normalized by the connector validator; Conflict(message, code) when it no longer passes."""
    serializer = DefinitionSerializer(data=definition)
    if not serializer.is_valid():
        raise Conflict(message, code=code)
    return dict(serializer.validated_data)


def _save(
    connector: Connector,
    data: dict[str, Any],
    *,
    user: User | None,
    new_version: bool = False,
    also: tuple[str, ...] = (),
) -> Connector:
    """Writes `data` to the locked row; records the version when it went up. `new_version` raises it even when
    the definition is unchanged (a restore or a template update is always a new version)."""
    locked = Connector.objects.select_for_update(of=("self",)).select_related("template").get(pk=connector.pk)
    before = (locked.version, locked.definition, locked.updated_at)
    editable = (*EDITABLE_FIELDS, *also)
    changed = [name for name in editable if name in data and getattr(locked, name) != data[name]]
    save_changes(locked, data, editable=editable, versioned=DEFINITION_FIELDS)
    if new_version and locked.version == before[0]:
        Connector.objects.filter(pk=locked.pk).update(version=F("version") + 1, updated_at=timezone.now())
        locked.refresh_from_db(fields=["version", "updated_at"])
    if locked.version != before[0]:
        _record_versions(locked, created_by=user, previous=before)
    if changed or locked.version != before[0]:
        details = {"fields": changed, "version": locked.version}
        audit.record(workspace_id=locked.workspace_id, action="connector.updated", target=locked, details=details)
    return locked


def _record_versions(
    connector: Connector, *, created_by: User | None, previous: tuple[int, dict, Any] | None = None
) -> None:
    """Inserts the connector's current version, and the previous one when it has no row yet (a connector made
    before versions were kept), in one statement."""
    rows = []
    if previous is not None:
        number, definition, changed_at = previous
        rows.append(
            ConnectorVersion(
                connector=connector,
                workspace_id=connector.workspace_id,
                version=number,
                definition=definition,
                created_at=changed_at,
            )
        )
    rows.append(
        ConnectorVersion(
            connector=connector,
            workspace_id=connector.workspace_id,
            version=connector.version,
            definition=connector.definition,
            created_by=created_by,
            created_at=connector.updated_at,
        )
    )
    ConnectorVersion.objects.bulk_create(rows, ignore_conflicts=previous is not None)


@transaction.atomic
def connector_import(
    *, workspace: Workspace, document: dict[str, Any], user: User | None = None
) -> tuple[Connector, list[str]]:
    """A new connector from a validated `connector/v1` document, and the services its definition (or the
    document's `required_credentials`) needs that the workspace holds no credential for."""
    connector = connector_create(workspace=workspace, data=document["connector"], created_by=user)
    needed = [*referenced_services(connector.definition), *document["required_credentials"]]
    return connector, missing_services(workspace_id=workspace.pk, services=needed)
