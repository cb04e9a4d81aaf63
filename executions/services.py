"""The API-facing execution services: accept an execute call (validation, idempotency, the queued row) and
cancel an execution. What a worker does with the row afterwards is in `executions.lifecycle`; the counters in
`executions.counters`.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from connectors.input_schema import first_input_error
from connectors.models import Connector
from contacts.models import Contact
from core import rows
from core.exceptions import Conflict, DomainError, InvalidInput, Unprocessable
from executions import counters, dispatch, events, lifecycle
from executions.models import FINISHED_STATUSES, Execution, Status
from usage.services import QuotaExceeded, count_execution_start, quota_refusals

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_INPUT_BYTES = 256 * 1024  # execute input, as JSON: it is stored with the execution and rendered into steps


def request_fingerprint(input: dict, contact_id: Any) -> str:
    canonical = json.dumps({"input": input, "contact": str(contact_id) if contact_id else None}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_input(connector: Connector, input: Any) -> None:
    """Raises InvalidInput (400) when `input` is larger than MAX_INPUT_BYTES as JSON or does not satisfy the
    connector's input_schema."""
    if not isinstance(input, dict):
        raise InvalidInput("Must be an object.", field="input")
    size = len(json.dumps(input, ensure_ascii=False).encode())
    if size > MAX_INPUT_BYTES:
        raise InvalidInput(f"The input is {size} bytes as JSON; at most {MAX_INPUT_BYTES} are accepted.", field="input")
    error = first_input_error(connector.input_schema, input)  # bounded: connectors/input_schema.py
    if error:
        raise InvalidInput(error, field="input")


def execution_create(
    *,
    connector: Connector,
    input: dict,
    contact: Contact | None = None,
    triggered_by: str = "api",
    fingerprint: str = "",
    enqueue: bool = True,
) -> Execution:
    """A queued execution of the connector's current definition, enqueued once the transaction commits
    (unless `enqueue` is False: the caller runs it in this process). Raises QuotaExceeded (429) when the
    workspace has used its executions for the month."""
    execution = _new_execution(connector, input, contact, triggered_by, None, fingerprint)
    _insert_counted(execution, connector, enqueue=enqueue)
    return execution


def _new_execution(
    connector: Connector,
    input: dict,
    contact: Contact | None,
    triggered_by: str,
    idempotency_key: str | None,
    fingerprint: str,
) -> Execution:
    return Execution(
        workspace_id=connector.workspace_id,
        connector=connector,
        connector_version=connector.version,
        definition=connector.definition,
        input=input,
        contact=contact,
        triggered_by=triggered_by,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        run_after=timezone.now(),
    )


# No savepoint of its own: a failed statement fails the caller's transaction anyway. Saves two round trips per
# execute call. Inside a caller's transaction, the caller commits and catches the quota's refusal.
@quota_refusals()
@transaction.atomic(savepoint=False)
def _insert_counted(execution: Execution, connector: Connector, *, enqueue: bool, skip_taken_key: bool = False) -> bool:
    """INSERTs the new execution and counts it in the monthly quota; returns False, with nothing written, when
    `skip_taken_key` and its idempotency key is already taken for the connector (the INSERT skips the row on
    the unique constraint instead of failing: no savepoint is needed)."""
    if not rows.insert_one(execution, skip_conflicts=skip_taken_key):
        return False
    # The monthly quota, at constant cost. On PostgreSQL the database counts the row when the transaction
    # commits, and a refusal fails the COMMIT; elsewhere it is counted now, and a refusal rolls the INSERT back
    # with the rest of the transaction.
    count_execution_start(workspace_id=connector.workspace_id)
    if enqueue:
        max_duration = connector.max_duration_seconds
        transaction.on_commit(lambda: dispatch.enqueue(execution.id, max_duration=max_duration))
    return True


def execution_request(
    *,
    connector: Connector,
    input: Any,
    contact_id: Any = None,
    idempotency_key: str | None = None,
    triggered_by: str = "api",
    enqueue: bool = True,
) -> tuple[Execution, bool]:
    """Accepts an execute call. Returns (execution, created); created is False for an idempotent replay.

    Raises Conflict for an inactive connector, InvalidInput for input or contact problems, Unprocessable when
    the idempotency key was used with a different body.
    """
    if not connector.is_active:
        raise Conflict("The connector is inactive; activate it before executing it.", code="connector_inactive")
    if idempotency_key and "\x00" in idempotency_key:  # refused here: the INSERT has no savepoint to fail in
        raise InvalidInput("Must not contain NUL characters.", field="Idempotency-Key")
    validate_input(connector, input)
    contact = None
    if contact_id is not None:
        contact = Contact.objects.filter(pk=contact_id, workspace_id=connector.workspace_id).first()
        if contact is None:
            raise InvalidInput("No such contact in this workspace.", field="contact_id")
    fingerprint = request_fingerprint(input, contact_id)
    if not idempotency_key:
        execution = execution_create(
            connector=connector,
            input=input,
            contact=contact,
            triggered_by=triggered_by,
            fingerprint=fingerprint,
            enqueue=enqueue,
        )
        return execution, True
    # Insert first: a new key (the common case) costs no read. A key already taken skips the INSERT (its unique
    # constraint, ON CONFLICT DO NOTHING), before the quota is counted, so the quota never stops a replay; then
    # the execution that holds the key answers, or, when it has expired, the key is freed and the INSERT tried
    # again. A concurrent request with the same key settles the same way.
    for _ in range(3):
        execution = _new_execution(connector, input, contact, triggered_by, idempotency_key, fingerprint)
        if _insert_counted(execution, connector, enqueue=enqueue, skip_taken_key=True):
            return execution, True
        existing = _idempotent_match(connector, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    raise Conflict("Could not settle the idempotency key; retry the request.")


def _idempotent_match(connector: Connector, key: str, fingerprint: str) -> Execution | None:
    previous = Execution.objects.filter(
        workspace_id=connector.workspace_id, connector=connector, idempotency_key=key
    ).first()
    if previous is None:
        return None
    if previous.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
        # Expired: free the key for the new request.
        Execution.objects.filter(pk=previous.pk, idempotency_key=key).update(idempotency_key=None)
        return None
    if previous.request_fingerprint != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_mismatch",
        )
    return previous


def execution_cancel(*, execution: Execution) -> Execution:
    """Cancels a queued or running execution at once: it is `cancelled` when this returns. A worker running
    it finishes the step in flight (recorded, since its request was sent) and starts no further step or retry.

    Raises Conflict (409) when the execution has already finished.
    """
    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        if locked.status in FINISHED_STATUSES:
            raise Conflict(f"The execution has already finished ({locked.status}).", code="already_finished")
        now = timezone.now()
        duration_ms = int((now - locked.started_at).total_seconds() * 1000) if locked.started_at else None
        # `worker` stays: the claim that runs the step in flight may still record it (see checkpoint_step).
        Execution.objects.filter(pk=locked.pk).update(
            status=Status.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            duration_ms=duration_ms,
            error=lifecycle.CANCELLED_MESSAGE,
            pending_retry={},
        )
        counters.count(locked.connector_id, locked.workspace_id, Status.CANCELLED, None, now)
        events.execution_finished(locked, Status.CANCELLED)
    execution.refresh_from_db()
    return execution


@dataclass(frozen=True)
class RerunResult:
    created: list[Execution]
    not_failed: int
    inactive: int
    invalid_input: int
    over_quota: int = 0


def executions_rerun_failed(*, queryset: QuerySet[Execution]) -> RerunResult:
    """A new queued execution (triggered_by "admin") with the same input and contact for every failed
    execution in `queryset`.

    Skipped, and counted in the result: executions that did not fail, those whose connector is now inactive
    (the API would refuse to run it too), those whose input no longer satisfies the connector's current
    input_schema, and those past their workspace's monthly quota. Each new execution is enqueued when its own
    transaction commits.
    """
    created: list[Execution] = []
    not_failed = inactive = invalid_input = over_quota = 0
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
        try:
            created.append(
                execution_create(
                    connector=connector, input=execution.input, contact=execution.contact, triggered_by="admin"
                )
            )
        except QuotaExceeded:
            over_quota += 1
    return RerunResult(
        created=created,
        not_failed=not_failed,
        inactive=inactive,
        invalid_input=invalid_input,
        over_quota=over_quota,
    )
