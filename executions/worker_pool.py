"""The worker pool for executions: Celery's threads pool, with its late acknowledgement delivered at once.

    celery -A config worker --pool=executions.worker_pool:ThreadPool --concurrency=200

An execution mostly waits on the APIs it calls, so an in-flight execution should cost a thread (kilobytes
and a socket), not a process (prefork: about 90 MB each). Celery's threads pool does that, but with late
acknowledgement on Redis it takes the next message only when its event loop next wakes (celery/celery#6941,
#4378): the acknowledgement is sent from the pool thread, and nothing tells the loop, which sleeps on its
sockets for up to a second before it asks Redis for more. A busy pool then runs about one task per slot per
second, however fast the tasks are.

This pool wakes the loop itself: the loop watches the read end of a pipe, and each task's completion callback
(which acknowledges the message) writes one byte to it after it returns. The loop wakes, drains the pipe, and
on that same pass asks Redis for the next message. Nothing else changes: acks_late, prefetch multiplier 1 (at
most `concurrency` messages reserved), and the warm shutdown of the threads pool (runs hand themselves back
to the queue before their next step, see docs/reliability.md).

Its threads outnumber the database connections a process should hold, so it also turns on the process's
connection pool (DATABASE_POOL_MAX_SIZE connections, psycopg_pool through Django): a run takes a connection for
its claim, each checkpoint and its finish, and hands it back as soon as the statement has answered
(core.pooled), so 200 runs in flight share a few connections.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from celery.concurrency.thread import TaskPool
from django.conf import settings
from django.db import connections


class ThreadPool(TaskPool):
    """Celery's threads pool whose completions wake the consumer's event loop (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_database_pool(settings.DATABASE_POOL_MAX_SIZE)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    def register_with_event_loop(self, loop: Any) -> None:
        super().register_with_event_loop(loop)
        loop.add_reader(self._wake_read, self._drain)

    def on_apply(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        callback: Callable[..., Any] | None = None,
        accept_callback: Callable[..., Any] | None = None,
        **options: Any,
    ) -> Any:
        def completed(result: Any) -> None:
            try:
                if callback is not None:
                    callback(result)  # acknowledges the message (acks_late)
            finally:
                self._wake()

        return super().on_apply(target, args, kwargs, completed, accept_callback, **options)

    def on_stop(self) -> None:
        super().on_stop()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _wake(self) -> None:
        # A full pipe already holds a pending wake-up; a closed one means the pool has stopped.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"\0")

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_read, 4096):
                pass


def use_database_pool(max_size: int) -> None:
    """Serves this process's PostgreSQL connections from a pool of at most `max_size` (the threads of the pool
    then queue for one, for at most 5 s, as long as a connect may take)."""
    database = settings.DATABASES["default"]
    if connections["default"].vendor != "postgresql" or database["OPTIONS"].get("pool"):
        return
    connections["default"].close()  # a persistent connection opened before, if any
    database["OPTIONS"]["pool"] = {"min_size": min(2, max_size), "max_size": max_size, "timeout": 5, "max_idle": 300}
    database["CONN_MAX_AGE"] = 0  # pooled connections go back to the pool instead of staying open per thread
    # The backend checks a pooled connection as it takes it (core/postgresql), at the cost of a poll; the pool's
    # own check would be a round trip every time.
    database["CONN_HEALTH_CHECKS"] = False
