"""Test runs: a definition run now, in the request, by the same runner and with the same context as a real
execution (credentials from the workspace vault, the contact's fields, the redactor), but with retries off,
at most TEST_RUN_MAX_SECONDS, and nothing written: no execution, no counters, no contact change, no
credential "last used" mark. The contact mapping is rendered and diffed by the code that applies it for real
(`contacts.services.contact_changes`), and only the diff is returned.

This module is the one adapter between test runs and the execution machinery; it reads `executions.runtime`
for the process's runner and `executions.step_http` for OAuth2 tokens and the rate budget (a test run that
would wait long for the budget fails with that wait as its error).
"""

import time
from dataclasses import dataclass, field
from typing import Any

from connectors.engine.credentials import WorkspaceNamespace
from connectors.engine.redaction import Redactor, redaction_scope
from connectors.engine.runner import Hooks, StepRecord, render_contact_mapping
from connectors.models import Connector
from contacts.models import Contact
from contacts.services import contact_changes
from core.exceptions import InvalidInput
from credentials.provider import VaultCredentialProvider
from executions.models import STEP_API_FIELDS, ExecutionStep, Status
from executions.runtime import get_runner
from executions.services import validate_input
from executions.step_http import trial_hooks
from workspaces.models import Workspace

# A test run holds a web worker: it ends after this long whatever the definition's max_duration_seconds.
TEST_RUN_MAX_SECONDS = 60


@dataclass
class TestRunResult:
    """The outcome of a test run, shaped like an execution's (steps are unsaved ExecutionStep rows)."""

    __test__ = False  # not a pytest test class

    status: str
    output: dict[str, Any]
    error: str | None
    steps: list[ExecutionStep]
    contact_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_test(*, workspace: Workspace, definition: dict[str, Any], input: Any, contact_id: Any = None) -> TestRunResult:
    """Runs a validated, normalized `definition` against `input` as `workspace` would.

    Raises InvalidInput when the input fails the definition's input_schema (or is too large) or the contact is
    not the workspace's. Sends the real requests; writes nothing.
    """
    validate_input(Connector(input_schema=definition["input_schema"]), input)
    contact = None
    if contact_id is not None:
        contact = Contact.objects.filter(pk=contact_id, workspace=workspace).first()
        if contact is None:
            raise InvalidInput("No such contact in this workspace.", field="contact_id")
    once = {**definition, "steps": [{**step, "retry": {"max_attempts": 1}} for step in definition["steps"]]}
    redactor = Redactor()
    provider = VaultCredentialProvider(workspace.pk)
    context: dict[str, Any] = {
        "input": input,
        "contact": contact.as_template_context() if contact else {},
        "workspace": WorkspaceNamespace(provider, redactor),
    }
    records: list[StepRecord] = []
    deadline = time.monotonic() + min(definition["max_duration_seconds"], TEST_RUN_MAX_SECONDS)
    with redaction_scope(redactor):
        hooks = Hooks(on_step=records.append, **trial_hooks(workspace.pk, provider, get_runner()))
        outcome = get_runner().advance(once, context, redactor, hooks, finished=[], deadline=deadline)
        changes, notes = {}, []
        if outcome.status == Status.SUCCEEDED and definition["contact_mapping"]:
            values, notes = render_contact_mapping(definition["contact_mapping"], context, redactor)
            if contact is None:
                notes.append("contact_mapping not applied: the test run has no contact_id.")
            else:
                changes = redactor.scrub(contact_changes(contact, redactor.scrub(values)))
    return TestRunResult(
        status=outcome.status or Status.FAILED,
        output={r.name: r.extracted for r in records if r.status == "succeeded"},
        error=redactor.scrub_message(outcome.error or (outcome.retry.error if outcome.retry else "")) or None,
        steps=[_step_row(record) for record in records],
        contact_changes=changes,
        notes=notes,
    )


def _step_row(record: StepRecord) -> ExecutionStep:
    """The record as the unsaved row an execution would have checkpointed (same fields, same defaults)."""
    row = ExecutionStep(index=record.index, **{name: getattr(record, name) for name in STEP_API_FIELDS})
    row.request = record.request or {}
    return row
