"""The one writer of the audit log. Services call `record` inside their own transaction, so an entry exists
exactly when the change it describes was committed."""

from typing import Any

from django.db import models

from audit.context import current_actor
from audit.models import AuditEntry

ACTIONS = frozenset(
    {
        *(
            f"{kind}.{verb}"
            for kind in ("connector", "trigger", "credential", "webhook_endpoint")
            for verb in ("created", "updated", "deleted")
        ),
        "api_key.created",
        "api_key.deleted",
        "member.added",
        "member.updated",
        "member.removed",
        "template.installed",
        "quota.updated",
    }
)


def record(
    *,
    workspace_id: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: Any = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Appends one entry. The actor (user email, `api_key:<prefix>` or `system`) and the IP come from the
    request being served, if any. `target` names the object by its model and primary key; `details` must
    hold names and ids only, never a value a user entered as a secret.

    Raises ValueError for an action outside ACTIONS (a typo would otherwise hide entries from filters).
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}")
    if target is not None:
        target_type = target_type or target._meta.model_name or ""
        target_id = target_id or target.pk
    actor = current_actor()
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        actor=actor.name[:320],
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
        ip=actor.ip,
    )
