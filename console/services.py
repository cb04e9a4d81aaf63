"""Writes the console performs on behalf of staff; each goes through the owning app's service."""

from dataclasses import dataclass

from django.db.models import QuerySet

from connectors.models import Connector
from connectors.services import connector_set_active
from core.exceptions import DomainError
from executions.models import Execution, Status
from executions.services import execution_create, validate_input


@dataclass(frozen=True)
class RerunResult:
    created: list[Execution]
    not_failed: int
    inactive: int
    invalid_input: int


def executions_rerun_failed(*, queryset: QuerySet[Execution]) -> RerunResult:
    """A new queued execution (triggered_by "admin") with the same input and contact for every failed
    execution in `queryset`.

    Skipped, and counted in the result: executions that did not fail, those whose connector is now inactive
    (the API would refuse to run it too), and those whose input no longer satisfies the connector's current
    input_schema. Each new execution is enqueued when its own transaction commits.
    """
    created, not_failed, inactive, invalid_input = [], 0, 0, 0
    # Re-read the rows: the caller's queryset may defer the columns needed here (the admin's list does).
    selected = Execution.objects.filter(pk__in=queryset.order_by().values("pk"))
    for execution in selected.select_related("connector", "contact").defer("definition", "output").iterator():
        if execution.status != Status.FAILED:
            not_failed += 1
            continue
        connector = execution.connector
        if not connector.is_active:
            inactive += 1
            continue
        try:
            validate_input(connector, execution.input)
        except DomainError:
            invalid_input += 1
            continue
        created.append(
            execution_create(
                connector=connector, input=execution.input, contact=execution.contact, triggered_by="admin"
            )
        )
    return RerunResult(created=created, not_failed=not_failed, inactive=inactive, invalid_input=invalid_input)


def connectors_set_active(*, queryset: QuerySet[Connector], is_active: bool) -> int:
    """Activates or deactivates every connector of `queryset` through `connector_set_active`; returns how many
    changed (those already in that state are left alone)."""
    changed = 0
    selected = Connector.objects.filter(pk__in=queryset.order_by().values("pk"), is_active=not is_active)
    for connector in selected.iterator():
        connector_set_active(connector=connector, is_active=is_active)
        changed += 1
    return changed
