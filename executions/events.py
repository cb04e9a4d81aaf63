"""The end of an execution, announced once: outbound webhooks, batch progress and `Prefer: wait` listen here.

Every path that moves an execution to a final status (finish, cancel, a cancelled queued run, an abandoned
run) calls `execution_finished` once, inside the transaction that moved it and only when it did move it
(the same guard that keeps the counters exact). Subscribers therefore write in that transaction (a delivery
row, a batch counter) and defer side effects to `transaction.on_commit`. Apps subscribe in their
AppConfig.ready(), so this module imports none of them.

A subscriber that writes declares when, as an SQL condition on the execution's row (`writes_if`). A worker's
finish on PostgreSQL folds the negation of all of them into its finishing UPDATE and runs it on its own,
without a transaction around it (executions.lifecycle): when no subscriber has anything to write, that one
statement is the whole finish, and only the subscribers that write nothing are called after it. Otherwise
the UPDATE changes nothing and the finish runs as a transaction with every subscriber.
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

_subscribers: dict[Subscriber, str | None] = {}


def subscribe(subscriber: Subscriber, *, writes_if: str | None = None) -> None:
    """Adds a subscriber. `writes_if`: for one that writes in the finishing transaction, an SQL boolean
    expression over the row of `executions_execution` (named so) that is true whenever it may have something
    to write; it may read other tables. A subscriber without it must write nothing in the transaction (its
    `on_commit` effects run at once when there is none)."""
    _subscribers.setdefault(subscriber, writes_if)


def writers_sql() -> str:
    """True for an execution's row when some subscriber may write when it finishes (see the module's doc)."""
    conditions = [f"({condition})" for condition in _subscribers.values() if condition]
    return " OR ".join(conditions) or "false"


def execution_finished(execution: FinishedExecution, status: str, *, writers_cleared: bool = False) -> None:
    """Tells every subscriber that `execution` ended with `status` (succeeded, failed or cancelled), and
    wakes the requests waiting for it once the transaction commits (Prefer: wait).

    `writers_cleared`: the statement that finished it found `writers_sql()` false for its row, so the
    subscribers that write are not called (they would find nothing to do)."""
    waiting.notify_on_commit(execution.id)
    for subscriber, writes_if in _subscribers.items():
        if not (writers_cleared and writes_if):
            subscriber(execution, status)
