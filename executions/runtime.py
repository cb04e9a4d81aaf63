"""Runs one claimed execution with the engine: the glue between the database lifecycle and the runner."""

import logging
import time
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from connectors.engine.credentials import WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import Redactor, redaction_scope
from connectors.engine.runner import Hooks, PendingRetry, Runner, StepRecord, render_contact_mapping
from credentials.provider import VaultCredentialProvider
from executions import services
from executions.models import Execution, Status

logger = logging.getLogger(__name__)

_runner: Runner | None = None


def get_runner() -> Runner:
    """One runner (and so one pooled HTTP session) per process."""
    global _runner
    if _runner is None:
        client = SafeHttpClient(
            AddressPolicy.from_setting(settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS),
            user_agent=settings.CONNECTORS_USER_AGENT,
            max_response_bytes=settings.CONNECTORS_MAX_RESPONSE_BYTES,
        )
        _runner = Runner(client, stored_body_bytes=settings.CONNECTORS_STORED_BODY_BYTES)
    return _runner


def reset_runner() -> None:
    """Forgets the process's runner so the next one reads the settings again (tests change them)."""
    global _runner
    _runner = None


def process_execution(execution_id, *, on_step=None) -> Execution | None:
    """Claims and advances the execution until it finishes or waits for a retry.

    Returns the execution as it stands afterwards, or None when it could not be claimed. `on_step` is
    called with each step record after its checkpoint (the run_connector command prints them).
    """
    execution = services.claim(execution_id)
    if execution is None:
        return None
    redactor = Redactor()
    provider = VaultCredentialProvider(execution.workspace_id)
    try:
        with redaction_scope(redactor):
            _advance(execution, redactor, provider, on_step)
    except SoftTimeLimitExceeded:
        _fail(execution, "The execution ran out of time (max_duration_seconds).")
    except Exception:
        logger.exception("Execution %s stopped by an unexpected error", execution.id)
        _fail(execution, "The execution stopped because of an internal error.")
    finally:
        provider.mark_used()
    execution.refresh_from_db()
    return execution


def _advance(execution: Execution, redactor: Redactor, provider, on_step) -> None:
    definition = execution.definition
    contact = execution.contact.as_template_context() if execution.contact else {}
    context = {
        "input": execution.input,
        "contact": contact,
        "workspace": WorkspaceNamespace(provider, redactor),
    }
    finished = [_record_from_row(row) for row in execution.step_records.order_by("index")]
    records = list(finished)

    def checkpoint(record: StepRecord) -> None:
        services.checkpoint_step(execution, record)
        records.append(record)
        if on_step is not None:
            on_step(record)

    hooks = Hooks(on_step=checkpoint, should_stop=lambda: not services.still_running(execution.id))
    outcome = get_runner().advance(
        definition,
        context,
        redactor,
        hooks,
        finished=finished,
        pending=_pending_retry(execution.pending_retry),
        deadline=_deadline(execution.started_at, definition["max_duration_seconds"]),
    )
    if outcome.state == "waiting":
        services.schedule_retry(execution, outcome.retry)
        return
    if outcome.state == "stopped":
        services.finish_cancelled_if_requested(execution)
        return
    output = {r.name: r.extracted for r in records if r.status == "succeeded"}
    values, notes = {}, []
    if outcome.status == Status.SUCCEEDED and definition["contact_mapping"]:
        values, notes = render_contact_mapping(definition["contact_mapping"], context)
        values = redactor.scrub(values)
        if execution.contact_id is None:
            notes.append("contact_mapping not applied: the execution has no contact.")
    services.finish(
        execution,
        status=outcome.status,
        output=output,
        error=redactor.scrub_text(outcome.error) if outcome.error else None,
        notes=notes,
        contact_values=values,
    )


def _fail(execution: Execution, message: str) -> None:
    services.finish(execution, status=Status.FAILED, output={}, error=message, notes=[])


def _deadline(started_at: datetime | None, max_duration_seconds: int) -> float:
    elapsed = (timezone.now() - started_at).total_seconds() if started_at else 0.0
    return time.monotonic() + max_duration_seconds - elapsed


def _pending_retry(state: dict) -> PendingRetry | None:
    if not state:
        return None
    started = state.get("started_at")
    return PendingRetry(
        index=state["index"],
        attempts=state["attempts"],
        delay=0.0,
        error=state.get("error", ""),
        started_at=datetime.fromisoformat(started) if started else None,
    )


def _record_from_row(row) -> StepRecord:
    return StepRecord(
        index=row.index,
        name=row.name,
        status=row.status,
        attempts=row.attempts,
        request=row.request,
        response=row.response,
        extracted=row.extracted,
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
    )
