"""Writes to contacts: the API's CRUD and the contact mapping applied by successful executions."""

from typing import Any, cast
from uuid import UUID

from django.db import models, transaction

from contacts.models import Contact
from workspaces.models import Workspace


@transaction.atomic
def contact_create(*, workspace: Workspace, **fields: Any) -> Contact:
    return Contact.objects.create(workspace=workspace, **fields)


@transaction.atomic
def contact_delete(*, contact: Contact) -> None:
    """Deletes the contact; executions that ran for it keep their record, without the link."""
    contact.delete()


@transaction.atomic
def contact_update(*, contact: Contact, **fields: Any) -> Contact:
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.save(update_fields=[*fields, "updated_at"])
    return contact


def contact_changes(contact: Contact, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What writing mapped values (`field` or `custom_fields.key` -> value) would change on `contact`:
    target -> {"from": current value, "to": new value}, only for targets whose value differs. Values are
    coerced to the field's type first (phone_valid to a boolean or null, text fields to strings cut to their
    length). Pure: test runs show this diff, executions apply it with `contact_apply_changes`."""
    changes = {}
    for target, value in values.items():
        if target.startswith("custom_fields."):
            key = target.removeprefix("custom_fields.")
            current, new = contact.custom_fields.get(key), value
        else:
            current, new = getattr(contact, target), _coerce(target, value)
        if current != new or (target.startswith("custom_fields.") and key not in contact.custom_fields):
            changes[target] = {"from": current, "to": new}
    return changes


def contact_apply_changes(contact: Contact, changes: dict[str, dict[str, Any]]) -> None:
    """Writes a diff made by `contact_changes` onto `contact` (the caller holds its row lock)."""
    changed = set()
    for target, change in changes.items():
        if target.startswith("custom_fields."):
            contact.custom_fields[target.removeprefix("custom_fields.")] = change["to"]
            changed.add("custom_fields")
        else:
            setattr(contact, target, change["to"])
            changed.add(target)
    if changed:
        contact.save(update_fields=[*sorted(changed), "updated_at"])


@transaction.atomic
def contact_apply_mapping(*, contact_id: UUID | str, values: dict[str, Any]) -> None:
    """Writes mapped values (`field` or `custom_fields.key` -> value) onto the contact, under a row lock so
    concurrent executions for one contact don't lose each other's custom fields."""
    contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
    if contact is None:
        return
    contact_apply_changes(contact, contact_changes(contact, values))


def _coerce(field: str, value: Any) -> Any:
    if field == "phone_valid":
        if isinstance(value, str):
            return value.strip().lower() in {"true", "1", "yes"}
        return None if value is None else bool(value)
    max_length = cast(models.CharField, Contact._meta.get_field(field)).max_length  # mappable fields are text
    return "" if value is None else str(value)[:max_length]
