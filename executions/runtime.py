"""Runs one claimed execution with the engine: the glue between the database lifecycle and the runner.

While a run is in this process it keeps three promises (docs/reliability.md):
- its heartbeat is renewed (by the process's one heartbeat thread, `executions.heartbeat`) even while a slow
  step is in flight, so the sweeper's stale window may be shorter than the slowest step;
- the record of a step whose request was sent is written even through a short database outage (the write is
  retried for DB_PATIENCE_SECONDS), because giving up would mean sending that step again after a requeue;
- when the worker is asked to stop (Celery warm shutdown), the run stops before its next step and goes back to
  the queue, to resume elsewhere at its first unfinished step.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from connectors.engine.credentials import WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import Redactor, redaction_scope
from connectors.engine.runner import Hooks, PendingRetry, Runner, StepRecord, render_contact_mapping
from core.pooled import release_connection
from credentials.provider import VaultCredentialProvider
from executions import lifecycle, sealing
from executions.heartbeat import heartbeats
from executions.models import STEP_API_FIELDS, Execution, Status
from executions.step_http import StepHttp
from monitoring import lifecycle as monitoring

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
# Below the sweeper's stale window (CONNECTORS_REQUEUE_STALE_AFTER_SECONDS): a worker waiting out a database
# outage gives up before the sweeper would hand its run to someone else.
DB_PATIENCE_SECONDS = 60.0
# The heartbeat stops this long after the run's deadline, so a run hung past its time is still swept.
HEARTBEAT_GRACE_SECONDS = 60.0
RELEASE_DELAY_SECONDS = 5.0

T = TypeVar("T")

_runner: Runner | None = None
_shutting_down = threading.Event()


def get_runner() -> Runner:
    """One runner (and so one set of pooled HTTP connections) per process."""
    global _runner
    if _runner is None:
        client = SafeHttpClient(
            AddressPolicy.from_setting(settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS),
            user_agent=settings.CONNECTORS_USER_AGENT,
            max_response_bytes=settings.CONNECTORS_MAX_RESPONSE_BYTES,
            pool_maxsize=settings.CONNECTORS_HTTP_POOL_MAXSIZE,
        )
        _runner = Runner(client, stored_body_bytes=settings.CONNECTORS_STORED_BODY_BYTES)
    return _runner


def reset_runner() -> None:
    """Forgets the process's runner so the next one reads the settings again (tests change them)."""
    global _runner
    _runner = None


def request_shutdown() -> None:
    """The process is stopping (Celery warm shutdown): runs in it stop before their next step and are handed
    back to the queue."""
    _shutting_down.set()


def shutdown_requested() -> bool:
    return _shutting_down.is_set()


def process_execution(execution_id, *, on_step=None, reload: bool = True) -> Execution | None:
    """Claims and advances the execution until it finishes, waits for a retry, or is stopped.

    Returns the execution as it stands afterwards (read again, unless `reload` is False: then it is the
    claimed instance, not refreshed; the Celery task does not look at it), or None when it could not be
    claimed. `on_step` is called with each step record after its checkpoint (the run_connector command prints
    them). Raises
    OperationalError/InterfaceError when the database stayed unreachable and the run could not be handed
    back (the sweeper requeues it once the database is back).
    """
    execution = lifecycle.claim(execution_id)
    # Held only for the statement: the run may wait for its first step's credentials, rate budget or the GIL
    # before it writes again.
    release_connection()
    if execution is None:
        return None
    redactor = Redactor()
    provider = _ReleasingProvider(VaultCredentialProvider(execution.workspace_id))
    step_http = StepHttp.for_execution(execution, provider, get_runner())  # OAuth2, rate budget, step stats
    deadline = _deadline(execution.started_at, execution.definition["max_duration_seconds"])
    heartbeats.add(execution, until=deadline + HEARTBEAT_GRACE_SECONDS)
    unwritten: list[StepRecord] = []  # sent, not yet checkpointed: written before the next step or with the finish
    with monitoring.execution_scope(execution):  # log ids, start line, HTTP requests into the usage
        try:
            with redaction_scope(redactor):
                _advance(execution, redactor, provider, on_step, deadline, step_http, unwritten)
        except lifecycle.LostClaim:
            logger.warning("Execution %s was requeued away from this worker; it stops here", execution.id)
        except SoftTimeLimitExceeded:
            _fail(execution, "The execution ran out of time (max_duration_seconds).", step_http, unwritten, on_step)
        except DATABASE_ERRORS:
            logger.warning("Execution %s lost the database; handing it back to the queue", execution.id)
            if not _release_quietly(execution):
                raise
        except Exception:
            logger.exception("Execution %s stopped by an unexpected error", execution.id)
            _fail(execution, "The execution stopped because of an internal error.", step_http, unwritten, on_step)
        finally:
            heartbeats.discard(execution)
            step_http.flush(execution)  # counts the finish did not take: a retry is due, or the run was handed back
            _mark_used_quietly(provider.vault)
    if reload:
        execution.refresh_from_db()
    return execution


def _advance(
    execution: Execution,
    redactor: Redactor,
    provider,
    on_step,
    deadline: float,
    step_http: StepHttp,
    unwritten: list[StepRecord],
) -> None:
    """Runs the steps. Each step's record is written (checkpointed) before the next step is sent, so a
    recorded step is never sent again; the run's last steps are written by the statement that finishes it,
    which saves a statement and a commit per run."""
    definition = execution.definition
    contact = execution.contact.as_template_context() if execution.contact else {}
    context = {
        "input": execution.input,
        "contact": contact,
        "workspace": WorkspaceNamespace(provider, redactor),
    }
    finished = []
    if not lifecycle.never_ran(execution):
        finished = _patiently(lambda: [_record_from_row(row) for row in execution.step_records.order_by("index")])
    records = list(finished)
    # Whether the run is still this claim's and not cancelled: true at the claim, then as each checkpoint
    # finds it (a checkpoint raises LostClaim when the run was taken away). No extra query per step.
    running = [True]

    def step_done(record: StepRecord) -> None:
        records.append(record)
        unwritten.append(record)

    def should_stop() -> bool:
        """Called before each step: the steps sent before it are checkpointed first."""
        while unwritten:
            record = unwritten[0]
            running[0] = _patiently(lifecycle.checkpoint_step, execution, record)
            release_connection()
            unwritten.pop(0)
            _recorded(record, on_step)
        release_connection()  # nothing holds a connection while the step waits
        return shutdown_requested() or not running[0]

    hooks = Hooks(on_step=step_done, should_stop=should_stop, **step_http.hooks())
    outcome = get_runner().advance(
        definition,
        context,
        redactor,
        hooks,
        finished=finished,
        pending=_pending_retry(execution.pending_retry),
        deadline=deadline,
    )
    if outcome.state == "waiting":
        _patiently(lifecycle.schedule_retry, execution, outcome.retry)
        return
    if outcome.state == "stopped":
        if shutdown_requested() and _patiently(lifecycle.release, execution):
            logger.info("Execution %s handed back to the queue: this worker is shutting down", execution.id)
        else:
            lifecycle.disown(execution)  # cancelled (or taken away): nothing more to do here
        return
    output = {r.name: r.extracted for r in records if r.status == "succeeded"}
    values, notes = {}, []
    if outcome.status == Status.SUCCEEDED and definition["contact_mapping"]:
        values, notes = render_contact_mapping(definition["contact_mapping"], context, redactor)
        values = redactor.scrub(values)
        if execution.contact_id is None:
            notes.append("contact_mapping not applied: the execution has no contact.")
    _finish_with_last_steps(
        execution,
        unwritten,
        on_step,
        status=outcome.status,
        output=output,
        error=redactor.scrub_message(outcome.error) if outcome.error else None,
        notes=notes,
        contact_values=values,
        step_counts=step_http.stats,
    )


def _fail(execution: Execution, message: str, step_http: StepHttp, unwritten: list[StepRecord], on_step) -> None:
    """Fails the run, recording its last steps with it; if those cannot be written (the error came from writing
    one of them), the run fails without them rather than staying `running` until the sweeper."""
    failed = {"status": Status.FAILED, "output": {}, "error": message, "notes": [], "step_counts": step_http.stats}
    if unwritten:
        try:
            _finish_with_last_steps(execution, unwritten, on_step, **failed)
            return
        except (lifecycle.LostClaim, *DATABASE_ERRORS):
            raise
        except Exception:
            logger.exception(
                "Execution %s: its last steps could not be recorded; failing it without them", execution.id
            )
            unwritten.clear()
    _finish_with_last_steps(execution, unwritten, on_step, **failed)


def _finish_with_last_steps(execution: Execution, unwritten: list[StepRecord], on_step, **finish: Any) -> None:
    """The finish, which also writes the steps not yet checkpointed (lifecycle.finish)."""
    _patiently(lifecycle.finish, execution, last_steps=list(unwritten), **finish)
    while unwritten:
        _recorded(unwritten.pop(0), on_step)


def _recorded(record: StepRecord, on_step) -> None:
    monitoring.step_recorded(record)
    if on_step is not None:
        on_step(record)


def _patiently(action: Callable[..., T], *args, **kwargs) -> T:
    """Runs a lifecycle read or write, waiting out a database outage of up to DB_PATIENCE_SECONDS.

    Waiting here (rather than failing) is the point: the step this run just sent is recorded only by this
    write, and a run that gives up is requeued and sends that step again.
    """
    give_up = time.monotonic() + DB_PATIENCE_SECONDS
    pause = 0.5
    while True:
        try:
            return action(*args, **kwargs)
        except DATABASE_ERRORS:
            if connection.in_atomic_block or time.monotonic() + pause > give_up:
                raise
            logger.warning("Database unreachable while recording execution progress; retrying in %.1fs", pause)
            time.sleep(pause)
            connection.close_if_unusable_or_obsolete()  # drop the broken connection; the next query reconnects
            pause = min(pause * 2, 2.0)


def _release_quietly(execution: Execution) -> bool:
    """Hands the run back to the queue after a database failure; False when the database is still away (the
    sweeper will requeue it from its stale heartbeat)."""
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        lifecycle.release(execution, delay=RELEASE_DELAY_SECONDS)
    except DATABASE_ERRORS:
        return False
    return True


def _mark_used_quietly(provider: VaultCredentialProvider) -> None:
    try:
        provider.mark_used()
    except DATABASE_ERRORS:
        logger.warning("Could not record credential use: database unreachable")


class _ReleasingProvider:
    """The vault, handing the connection back after each call: a step reads its credentials (and its OAuth2
    token and rate limit) while it is rendered, right before its request is sent and waited for."""

    def __init__(self, vault: VaultCredentialProvider) -> None:
        self.vault = vault

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.vault, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            finally:
                release_connection()

        return call


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
        state=state.get("state"),
    )


def _record_from_row(row) -> StepRecord:
    return StepRecord(
        index=row.index,
        **{name: getattr(row, name) for name in STEP_API_FIELDS},
        sealed=sealing.unseal(row.execution_id, row.index, row.sealed),
    )
