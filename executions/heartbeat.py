"""The heartbeat of every run in this process: one thread and one statement per interval, whatever the count.

A running execution must renew `heartbeat_at` while a slow step is in flight, so that the sweeper can tell a
slow step from a dead worker (docs/reliability.md). A worker process holds hundreds of runs at once; a thread
and a statement per run and interval would grow with them. Instead runs register here for as long as they
are in the process, and one daemon thread renews all of them every CONNECTORS_HEARTBEAT_SECONDS with one
UPDATE (`lifecycle.heartbeat_runs`), which touches only rows still running under the registered claim.

A run is renewed until `until` (a time.monotonic() value: its deadline plus a grace), so a run hung past its
time is swept anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from executions import lifecycle
from executions.models import Execution

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Run:
    execution: Execution
    until: float


class Heartbeats:
    """The runs of this process whose heartbeat is renewed (`add` when claimed, `discard` when they leave)."""

    def __init__(self) -> None:
        self._runs: dict[object, _Run] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, execution: Execution, *, until: float) -> None:
        with self._lock:
            self._runs[execution.id] = _Run(execution, until)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="execution-heartbeats", daemon=True)
                self._thread.start()

    def discard(self, execution: Execution) -> None:
        with self._lock:
            self._runs.pop(execution.id, None)

    def __len__(self) -> int:
        return len(self._runs)

    def beat(self) -> int:
        """Renews every registered run that is before its `until` (forgetting the others); returns how many
        rows were renewed."""
        now = time.monotonic()
        with self._lock:
            for key in [key for key, run in self._runs.items() if run.until <= now]:
                del self._runs[key]
            executions = [run.execution for run in self._runs.values()]
        if not executions:
            return 0
        return lifecycle.heartbeat_runs(executions)

    def _loop(self) -> None:
        interval = settings.CONNECTORS_HEARTBEAT_SECONDS
        while True:
            time.sleep(interval)
            try:
                self.beat()
            except (OperationalError, InterfaceError):
                logger.warning("Heartbeat of %s execution(s) failed: database unreachable", len(self))
            finally:
                connection.close()  # this thread's own connection, back to the pool between beats


heartbeats = Heartbeats()
