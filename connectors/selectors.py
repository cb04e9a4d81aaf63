"""Reads about connectors: the list and its filters, their version history, a readable diff between two
versions, and the services a definition needs credentials for."""

import difflib
import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import serializers

from connectors.engine.templating import compile_template, iter_templates
from connectors.models import Connector, ConnectorVersion
from credentials.models import Credential


def connectors() -> QuerySet[Connector]:
    """Connectors with their template (the API shows its id and name); the caller scopes them to a workspace."""
    return Connector.objects.select_related("template")


def filter_connectors(queryset: QuerySet[Connector], params: Any) -> QuerySet[Connector]:
    """Applies `?search=` (name or description) and `?is_active=`; a bad boolean raises ValidationError (400)."""
    search = params.get("search", "").strip()
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if "is_active" in params:
        try:
            is_active = serializers.BooleanField().run_validation(params["is_active"])
        except serializers.ValidationError as error:
            raise serializers.ValidationError({"is_active": error.detail}) from None
        queryset = queryset.filter(is_active=is_active)
    return queryset


def connector_versions(connector: Connector) -> QuerySet[ConnectorVersion]:
    """Every version of the connector, the current one included, newest first (one query with the authors)."""
    return ConnectorVersion.objects.filter(connector=connector).select_related("created_by").order_by("-version")


def connector_version(connector: Connector, number: int) -> ConnectorVersion | None:
    return connector_versions(connector).filter(version=number).first()


def pretty_definition(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)


def definition_diff(older: ConnectorVersion, newer: ConnectorVersion) -> list[str]:
    """A unified diff of the two definitions as pretty JSON (keys sorted, so only real changes show)."""
    return list(
        difflib.unified_diff(
            pretty_definition(older.definition).splitlines(),
            pretty_definition(newer.definition).splitlines(),
            fromfile=f"version {older.version}",
            tofile=f"version {newer.version}",
            lineterm="",
        )
    )


def referenced_services(definition: dict[str, Any]) -> list[str]:
    """Services whose credential the definition reads (`{{workspace.SERVICE...}}`, and the credential of an
    `oauth2` auth), in order of first use."""
    found: dict[str, None] = {}
    for step in definition.get("steps", []):
        if step["auth"].get("type") == "oauth2":
            found.setdefault(step["auth"]["credential"], None)
    for source in _template_sources(definition):
        for reference in compile_template(source).references:
            if reference.namespace == "workspace" and reference.path:
                found.setdefault(str(reference.path[0]), None)
    return list(found)


def missing_services(*, workspace_id: uuid.UUID, services: Iterable[str]) -> list[str]:
    """The given services (order kept, duplicates dropped) that the workspace holds no credential for."""
    wanted = list(dict.fromkeys(services))
    if not wanted:
        return []
    present = set(
        Credential.objects.filter(workspace_id=workspace_id, service_name__in=wanted).values_list(
            "service_name", flat=True
        )
    )
    return [name for name in wanted if name not in present]


def _template_sources(definition: dict[str, Any]) -> Iterable[str]:
    for step in definition.get("steps", []):
        yield step["url"]
        yield from step["headers"].values()
        yield from step["query"].values()
        yield from (value for key, value in step["auth"].items() if key not in ("type", "in", "name", "credential"))
        if step["body_type"] != "none":
            yield from (source for _location, source in iter_templates(step["body"]))
    yield from definition.get("contact_mapping", {}).values()
