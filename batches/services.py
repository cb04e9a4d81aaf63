"""Batches: many executions of one connector accepted at once, all or nothing.

Every item is validated first, exactly as an execute call validates its body (the same `validate_input`,
contacts checked in one query); then one transaction inserts the batch and all its executions (one bulk
INSERT) and, after commit, one message fans them out to the queue (batches.tasks). A 1000-item batch costs
the web request a few statements and one broker message, not 1000. Quotas, when they exist, should check
`len(items)` at the top of `batch_create`, refusing the whole batch.
"""

from typing import Any

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from batches import dispatch
from batches.models import Batch
from connectors import input_schema
from connectors.models import Connector
from contacts.models import Contact
from core.exceptions import Conflict, InvalidInput
from executions import services as execution_services
from executions.events import FinishedExecution
from executions.models import Execution
from usage.services import reserve_executions

MAX_ITEMS = 1000
BATCH_VALIDATION_SECONDS = 2.0  # input_schema checks of all items together (connectors/input_schema.py)


def _item_errors(connector: Connector, items: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    wanted = {str(item["contact_id"]) for item in items if item.get("contact_id")}
    known = {
        str(pk)
        for pk in Contact.objects.filter(pk__in=wanted, workspace_id=connector.workspace_id).values_list(
            "pk", flat=True
        )
    }
    errors: list[dict[str, list[str]]] = []
    with input_schema.shared_budget(BATCH_VALIDATION_SECONDS):  # the whole batch, not each item
        for item in items:
            problems: dict[str, list[str]] = {}
            try:
                execution_services.validate_input(connector, item.get("input", {}))
            except InvalidInput as error:
                problems[error.field or "input"] = [error.message]
            if item.get("contact_id") and str(item["contact_id"]) not in known:
                problems["contact_id"] = ["No such contact in this workspace."]
            errors.append(problems)
    return errors


def batch_create(*, connector: Connector, items: list[dict[str, Any]]) -> tuple[Batch, list]:
    """Accepts a batch; returns it with its execution ids in item order.

    Raises Conflict (409) for an inactive connector and ValidationError (400, `{"items": [per-item errors]}`)
    when any item is invalid, and QuotaExceeded (429) when the batch would pass the monthly quota; then nothing
    is created."""
    if not connector.is_active:
        raise Conflict("The connector is inactive; activate it before executing it.", code="connector_inactive")
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationError({"items": [f"Send between 1 and {MAX_ITEMS} items."]})
    errors = _item_errors(connector, items)
    if any(errors):
        raise ValidationError({"items": errors})
    return _insert(connector, items)


@transaction.atomic
def _insert(connector: Connector, items: list[dict[str, Any]]) -> tuple[Batch, list]:
    reserve_executions(workspace_id=connector.workspace_id, count=len(items))  # the monthly quota: all or nothing
    now = timezone.now()
    batch = Batch.objects.create(workspace_id=connector.workspace_id, connector=connector, count=len(items))
    definition = connector.definition
    executions = [
        Execution(
            workspace_id=connector.workspace_id,
            connector=connector,
            connector_version=connector.version,
            definition=definition,
            input=item.get("input", {}),
            contact_id=item.get("contact_id"),
            triggered_by="batch",
            request_fingerprint=execution_services.request_fingerprint(item.get("input", {}), item.get("contact_id")),
            run_after=now,
            batch=batch,
        )
        for item in items
    ]
    Execution.objects.bulk_create(executions)
    max_duration = connector.max_duration_seconds
    transaction.on_commit(lambda: dispatch.start(batch.id, max_duration=max_duration))
    return batch, [execution.id for execution in executions]


def count_finished_execution(execution: FinishedExecution, status: str) -> None:
    """Subscriber of executions.events: one UPDATE in the finishing transaction for a batch's execution; the
    last one to end stamps `finished_at`."""
    if not execution.batch_id:
        return
    Batch.objects.filter(pk=execution.batch_id).update(
        ended=F("ended") + 1,
        finished_at=Case(When(ended__gte=F("count") - 1, then=Value(timezone.now())), default=F("finished_at")),
    )
