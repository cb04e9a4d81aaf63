"""What operations observe of each execution, hooked into the lifecycle with one line per place:

- `execution_scope` wraps one claim's run in a worker: it binds the ids to every log line, logs the start,
  and counts the HTTP requests the steps send (`request_sent`, called by the per-step statistics collector,
  the one place requests are counted); the statement that finishes the execution adds them to the usage
  (`take_requests`); requests not yet in the usage when the claim ends (it waits for a retry, or was handed
  back) are added then;
- `step_recorded` observes a checkpointed step (the step-duration histogram);
- `execution_ended` (subscribed to executions.events) runs in the transaction that gives an execution its
  final status: it adds the
  claim's HTTP requests to the usage there, and once that commits it counts the execution in the metrics,
  logs its end, and tells the alerts that a failure happened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import InterfaceError, OperationalError

from core import pooled
from monitoring.logs import log_context
from monitoring.metrics import EXECUTIONS, HTTP_REQUESTS, STEP_DURATION, status_class

logger = logging.getLogger("connectors.executions")


class _Sent:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_sent: ContextVar[_Sent | None] = ContextVar("http_requests_sent", default=None)


def request_sent(status_code: int | None) -> None:
    """A step sent one request (every attempt and page; None: no answer). Counted in memory: the metrics by
    status class, and this claim's total for the workspace's usage."""
    HTTP_REQUESTS.labels(status_class(status_code)).inc()
    sent = _sent.get()
    if sent is not None:
        sent.count += 1


@contextmanager
def execution_scope(execution: Any) -> Iterator[None]:
    sent = _Sent()
    token = _sent.set(sent)
    ids = {
        "execution_id": execution.id,
        "workspace_id": execution.workspace_id,
        "connector_id": execution.connector_id,
    }
    try:
        with log_context(**ids):
            logger.info("Execution %s started (claim %s)", execution.id, execution.attempts)
            yield
    finally:
        _sent.reset(token)
        _add_usage(execution.workspace_id, sent.count)


def _add_usage(workspace_id: Any, count: int) -> None:
    from usage.services import add_http_requests

    try:
        add_http_requests(workspace_id=workspace_id, count=count)
    except (OperationalError, InterfaceError):
        logger.warning("Could not add %s HTTP requests to the usage: database unreachable", count)


def take_requests() -> int:
    """The HTTP requests this claim sent that the usage does not count yet, now counted as added: for the
    statement that finishes the execution, which adds them itself (`give_back_requests` if it did not)."""
    sent = _sent.get()
    if sent is None:
        return 0
    count, sent.count = sent.count, 0
    return count


def give_back_requests(count: int) -> None:
    """Requests taken for a finish that did not happen (it lost its claim, or failed): they are added as
    before, when the claim ends."""
    sent = _sent.get()
    if sent is not None:
        sent.count += count


def step_recorded(record: Any) -> None:
    if record.duration_ms is not None:
        STEP_DURATION.labels(record.status).observe(record.duration_ms / 1000)


def execution_ended(execution: Any, status: str) -> None:
    """Subscribed to executions.events (monitoring.apps): called in the transaction that gave `execution` its
    final status. Adds the HTTP requests this claim sent to the month's usage in that transaction (one
    statement; none on PostgreSQL, where the finishing statement took them), and once it commits counts the
    execution in the metrics, logs its end and tells the alerts about a failure."""
    workspace_id = execution.workspace_id
    sent = _sent.get()
    if sent is not None and sent.count:
        _add_usage(workspace_id, sent.count)
        sent.count = 0

    def committed() -> None:
        EXECUTIONS.labels(status).inc()
        logger.info(
            "Execution finished: %s",
            status,
            extra={"status": status, "execution_id": str(execution.id), "workspace_id": str(workspace_id)},
        )
        if status == "failed":
            from alerts.services import failure_noticed

            failure_noticed(workspace_id=workspace_id)

    pooled.on_commit(committed)
