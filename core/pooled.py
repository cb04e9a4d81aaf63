"""Holding a pooled database connection only for the statements that need it.

A worker process serves hundreds of runs from a pool of a few connections (executions.worker_pool). A run
takes one for each statement it sends (its claim, each checkpoint, its finish); whatever the run does after
a statement while still holding it (a log line, a Redis publish, waiting for the GIL among a hundred other
threads) is time in which another run waits for the pool. So a run hands the connection back as soon as its
statement has answered, and work that needs no database does not take one.
"""

from collections.abc import Callable

from django.db import connection, transaction


def release_connection() -> None:
    """Returns this thread's database connection to the pool (when pooled, and not inside a transaction)."""
    if connection.settings_dict["OPTIONS"].get("pool") and not connection.in_atomic_block:
        connection.close()


def on_commit(action: Callable[[], None]) -> None:
    """`transaction.on_commit` that runs `action` at once outside a transaction without touching the
    connection: Django's asks the connection whether it is in autocommit, which takes one from the pool
    (and holds it until the thread hands it back) only to learn that it is."""
    if connection.in_atomic_block:
        transaction.on_commit(action)
    else:
        action()
