"""The end of an execution, announced once: outbound webhooks, batch progress and `Prefer: wait` listen here.

Every path that moves an execution to a final status (finish, cancel, a cancelled queued run, an abandoned
run) calls `execution_finished` once, inside the transaction that moved it and only when it did move it
(the same guard that keeps the counters exact). Subscribers therefore write in that transaction (a delivery
row, a batch counter) and defer side effects to `transaction.on_commit`. Apps subscribe in their
AppConfig.ready(), so this module imports none of them.
"""

import uuid
from collections.abc import Callable
from typing import Protocol

from executions import waiting


class FinishedExecution(Protocol):
    """What listeners may read of the execution (an Execution, possibly loaded with only these fields)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def workspace_id(self) -> uuid.UUID: ...
    @property
    def connector_id(self) -> uuid.UUID: ...
    @property
    def batch_id(self) -> uuid.UUID | None: ...


Subscriber = Callable[[FinishedExecution, str], None]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def execution_finished(execution: FinishedExecution, status: str) -> None:
    """Tells every subscriber that `execution` ended with `status` (succeeded, failed or cancelled), and
    wakes the requests waiting for it once the transaction commits (Prefer: wait)."""
    waiting.notify_on_commit(execution.id)
    for subscriber in _subscribers:
        subscriber(execution, status)
