"""The execution lifecycle in the database: create, claim, checkpoint, retry, finish, cancel, requeue.

The row is the truth; a broker message only says "look at this execution". Every transition is a conditional
UPDATE on the current status, so a duplicate delivery, a crashed worker or a concurrent sweeper can cost time
but never a second run of a step that succeeded or a second count in the counters.
"""

import hashlib
import json
import logging
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from jsonschema import Draft202012Validator

from connectors.models import Connector
from contacts.models import Contact
from contacts.services import contact_apply_mapping
from core.exceptions import Conflict, InvalidInput, Unprocessable
from executions import dispatch
from executions.models import (
    FINISHED_STATUSES,
    ConnectorDailyStats,
    Execution,
    ExecutionStep,
    Status,
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_REQUEUES = 5
WORKER_ID = f"{socket.gethostname()}:{threading.get_native_id()}"


def request_fingerprint(input: dict, contact_id: Any) -> str:
    canonical = json.dumps(
        {"input": input, "contact": str(contact_id) if contact_id else None}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_input(connector: Connector, input: Any) -> None:
    """Raises InvalidInput (400) when `input` does not satisfy the connector's input_schema."""
    if not isinstance(input, dict):
        raise InvalidInput("Must be an object.", field="input")
    errors = sorted(
        Draft202012Validator(connector.input_schema).iter_errors(input), key=lambda e: list(e.path)
    )
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path)
        raise InvalidInput(f"{where + ': ' if where else ''}{first.message}", field="input")


@transaction.atomic
def execution_create(
    *,
    connector: Connector,
    input: dict,
    contact: Contact | None = None,
    triggered_by: str = "api",
    idempotency_key: str | None = None,
    fingerprint: str = "",
    enqueue: bool = True,
) -> Execution:
    """A queued execution of the connector's current definition, enqueued once the transaction commits
    (unless `enqueue` is False: the caller runs it in this process)."""
    execution = Execution.objects.create(
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
    if enqueue:
        max_duration = connector.max_duration_seconds
        transaction.on_commit(lambda: dispatch.enqueue(execution.id, max_duration=max_duration))
    return execution


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
        raise Conflict(
            "The connector is inactive; activate it before executing it.", code="connector_inactive"
        )
    validate_input(connector, input)
    contact = None
    if contact_id is not None:
        contact = Contact.objects.filter(pk=contact_id, workspace_id=connector.workspace_id).first()
        if contact is None:
            raise InvalidInput("No such contact in this workspace.", field="contact_id")
    fingerprint = request_fingerprint(input, contact_id)
    create = {"connector": connector, "input": input, "contact": contact, "fingerprint": fingerprint}
    create |= {"triggered_by": triggered_by, "enqueue": enqueue}
    if not idempotency_key:
        return execution_create(**create), True
    for _ in range(3):
        existing = _idempotent_match(connector, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                execution = execution_create(**create, idempotency_key=idempotency_key)
            return execution, True
        except IntegrityError:
            continue  # a concurrent request with the same key won; read its execution
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


def claim(execution_id) -> Execution | None:
    """Moves a queued execution to running for this worker; None when someone else has it, it is waiting
    for a retry, it was cancelled, or its workspace is at its concurrency cap (it then stays queued and is
    enqueued again shortly)."""
    now = timezone.now()
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update(of=("self",))
            .filter(pk=execution_id, status=Status.QUEUED)
            .only("id", "workspace_id", "run_after", "cancel_requested")
            .first()
        )
        if execution is None:
            return None
        if execution.cancel_requested:
            _finish_cancelled(execution.id)
            return None
        if execution.run_after and execution.run_after > now + timedelta(seconds=1):
            return None  # an early duplicate of a delayed retry; the scheduled message will come
        running = Execution.objects.filter(workspace_id=execution.workspace_id, status=Status.RUNNING).count()
        if running >= settings.CONNECTORS_WORKSPACE_CONCURRENCY:
            Execution.objects.filter(pk=execution.id).update(run_after=now + timedelta(seconds=1))
            transaction.on_commit(lambda: dispatch.enqueue(execution.id, delay=1.0))
            return None
        Execution.objects.filter(pk=execution.id).update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), Now()),
            heartbeat_at=now,
            worker=WORKER_ID,
        )
    return Execution.objects.select_related("contact").get(pk=execution_id)


def still_running(execution_id) -> bool:
    """False when the execution was cancelled (or taken away) while this worker ran it."""
    return Execution.objects.filter(pk=execution_id, status=Status.RUNNING, cancel_requested=False).exists()


def checkpoint_step(execution: Execution, record) -> None:
    """Persists a finished (or skipped) step and renews the heartbeat, in one transaction."""
    with transaction.atomic():
        ExecutionStep.objects.update_or_create(
            execution_id=execution.id,
            index=record.index,
            defaults={
                "name": record.name,
                "status": record.status,
                "attempts": record.attempts,
                "request": record.request or {},
                "response": record.response,
                "extracted": record.extracted,
                "error": record.error,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "duration_ms": record.duration_ms,
            },
        )
        Execution.objects.filter(pk=execution.id).update(heartbeat_at=timezone.now(), pending_retry={})


def schedule_retry(execution: Execution, retry) -> bool:
    """Releases the worker: the execution goes back to queued until its retry is due."""
    run_after = timezone.now() + timedelta(seconds=retry.delay)
    pending = {
        "index": retry.index,
        "attempts": retry.attempts,
        "error": retry.error,
        "started_at": retry.started_at.isoformat() if retry.started_at else None,
    }
    with transaction.atomic():
        moved = Execution.objects.filter(pk=execution.id, status=Status.RUNNING).update(
            status=Status.QUEUED,
            run_after=run_after,
            pending_retry=pending,
            worker="",
            heartbeat_at=timezone.now(),
        )
        if moved:
            transaction.on_commit(lambda: dispatch.enqueue(execution.id, delay=retry.delay))
    return bool(moved)


def finish(
    execution: Execution,
    *,
    status: str,
    output: dict,
    error: str | None,
    notes: list[str],
    contact_values: dict | None = None,
) -> bool:
    """Final status, connector counters, daily rollup and contact mapping, all in one transaction and only
    if the execution is still running (so a duplicate finisher changes nothing)."""
    now = timezone.now()
    with transaction.atomic():
        started = Execution.objects.filter(pk=execution.id).values_list("started_at", flat=True).first()
        duration_ms = int((now - started).total_seconds() * 1000) if started else None
        moved = Execution.objects.filter(pk=execution.id, status=Status.RUNNING).update(
            status=status,
            output=output,
            error=error,
            notes=notes,
            finished_at=now,
            duration_ms=duration_ms,
            pending_retry={},
            worker="",
        )
        if not moved:
            return False
        _count(execution.connector_id, execution.workspace_id, status, duration_ms, now)
        if status == Status.SUCCEEDED and execution.contact_id and contact_values:
            contact_apply_mapping(contact_id=execution.contact_id, values=contact_values)
    return True


def _count(connector_id, workspace_id, status: str, duration_ms: int | None, now: datetime) -> None:
    succeeded = int(status == Status.SUCCEEDED)
    failed = int(status == Status.FAILED)
    Connector.objects.filter(pk=connector_id).update(
        total_executions=F("total_executions") + 1,
        successful_executions=F("successful_executions") + succeeded,
        failed_executions=F("failed_executions") + failed,
        last_executed_at=now,
    )
    if not (succeeded or failed):
        return
    day = now.date()
    updated = ConnectorDailyStats.objects.filter(connector_id=connector_id, date=day).update(
        succeeded=F("succeeded") + succeeded,
        failed=F("failed") + failed,
        total_duration_ms=F("total_duration_ms") + (duration_ms or 0),
    )
    if not updated:
        try:
            with transaction.atomic():
                ConnectorDailyStats.objects.create(
                    connector_id=connector_id,
                    workspace_id=workspace_id,
                    date=day,
                    succeeded=succeeded,
                    failed=failed,
                    total_duration_ms=duration_ms or 0,
                )
        except IntegrityError:
            ConnectorDailyStats.objects.filter(connector_id=connector_id, date=day).update(
                succeeded=F("succeeded") + succeeded,
                failed=F("failed") + failed,
                total_duration_ms=F("total_duration_ms") + (duration_ms or 0),
            )


def finish_cancelled_if_requested(execution: Execution) -> bool:
    with transaction.atomic():
        moved = Execution.objects.filter(
            pk=execution.id, status=Status.RUNNING, cancel_requested=True
        ).update(
            status=Status.CANCELLED, finished_at=timezone.now(), worker="", error="Cancelled on request."
        )
        if moved:
            _count(execution.connector_id, execution.workspace_id, Status.CANCELLED, None, timezone.now())
    return bool(moved)


def _finish_cancelled(execution_id) -> None:
    execution = Execution.objects.only("connector_id", "workspace_id").get(pk=execution_id)
    moved = Execution.objects.filter(pk=execution_id, status=Status.QUEUED).update(
        status=Status.CANCELLED, finished_at=timezone.now(), error="Cancelled on request.", pending_retry={}
    )
    if moved:
        _count(execution.connector_id, execution.workspace_id, Status.CANCELLED, None, timezone.now())


def execution_cancel(*, execution: Execution) -> Execution:
    """Cancels a queued execution at once; a running one stops before its next step or retry.

    Raises Conflict (409) when the execution has already finished.
    """
    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        if locked.status in FINISHED_STATUSES:
            raise Conflict(f"The execution has already finished ({locked.status}).", code="already_finished")
        Execution.objects.filter(pk=locked.pk).update(cancel_requested=True)
        if locked.status == Status.QUEUED:
            _finish_cancelled(locked.pk)
    execution.refresh_from_db()
    return execution


def requeue_stuck(*, stale_after: int) -> int:
    """Enqueues again executions without progress for `stale_after` seconds; returns how many.

    Queued ones whose retry is long overdue (their message was lost) and running ones whose heartbeat is
    stale (their worker died). Each is moved with a conditional update, so concurrent sweepers requeue an
    execution once; one requeued more than MAX_REQUEUES times is failed instead.
    """
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    stuck = Execution.objects.filter(
        Q(status=Status.QUEUED, run_after__lt=cutoff) | Q(status=Status.RUNNING, heartbeat_at__lt=cutoff)
    ).values_list("id", "status", "requeue_count", "heartbeat_at", "run_after")
    requeued = 0
    for execution_id, status, requeue_count, heartbeat_at, run_after in stuck.iterator():
        same_state = Q(pk=execution_id, status=status, heartbeat_at=heartbeat_at, run_after=run_after)
        if requeue_count >= MAX_REQUEUES:
            _fail_abandoned(execution_id, same_state)
            continue
        with transaction.atomic():
            moved = Execution.objects.filter(same_state).update(
                status=Status.QUEUED,
                run_after=timezone.now(),
                requeue_count=F("requeue_count") + 1,
                worker="",
            )
            if moved:
                transaction.on_commit(lambda execution_id=execution_id: dispatch.enqueue(execution_id))
        requeued += moved
    return requeued


def _fail_abandoned(execution_id, same_state: Q) -> None:
    with transaction.atomic():
        execution = Execution.objects.filter(same_state).only("connector_id", "workspace_id").first()
        if execution is None:
            return
        now = timezone.now()
        moved = Execution.objects.filter(same_state).update(
            status=Status.FAILED,
            finished_at=now,
            worker="",
            error=f"Abandoned after being requeued {MAX_REQUEUES} times without finishing.",
        )
        if moved:
            _count(execution.connector_id, execution.workspace_id, Status.FAILED, None, now)
