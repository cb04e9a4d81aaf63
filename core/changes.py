"""Partial updates of versioned models (connectors and templates share the rule)."""

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models import F


def save_changes(
    instance: models.Model, data: dict[str, Any], *, editable: Iterable[str], versioned: Iterable[str]
) -> bool:
    """Sets the `editable` fields of `data` that differ from `instance` and saves only those.

    `version` goes up by one (an F() expression, so concurrent edits each count) when any of the `versioned`
    fields changed. Returns whether anything was saved; `instance.version` is fresh afterwards.
    """
    changed = [name for name in editable if name in data and getattr(instance, name) != data[name]]
    if not changed:
        return False
    for name in changed:
        setattr(instance, name, data[name])
    update_fields = [*changed, "updated_at"]
    if not set(changed).isdisjoint(versioned):
        instance.version = F("version") + 1
        update_fields.append("version")
    instance.save(update_fields=update_fields)
    instance.refresh_from_db(fields=["version", "updated_at"])
    return True
