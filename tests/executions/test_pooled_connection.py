"""A run in a worker process holds a pooled database connection only while its statements run.

A worker's hundreds of runs share a pool of a few connections (executions.worker_pool), so a run hands its
connection back as soon as each statement has answered (core.pooled): it logs its start, records a step in
the metrics, announces its end (Prefer: wait) and logs it without one. These drive a real run in the test
process with its default connection served from a pool, as in a worker process.
"""

import copy
import logging

import pytest
from django.db import connection

from executions import services, waiting
from executions.models import Execution, Status
from executions.runtime import process_execution
from executions.worker_pool import use_database_pool
from monitoring import lifecycle as monitoring

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the worker's pool is PostgreSQL's"),
]


@pytest.fixture
def pooled_connection(transactional_db):
    """The test thread's default connection served from a pool of two, as in a worker process."""
    database = connection.settings_dict
    saved = copy.deepcopy({name: database[name] for name in ("OPTIONS", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")})
    use_database_pool(2)
    assert connection.settings_dict["OPTIONS"].get("pool"), "the pool is the default connection's"
    yield connection.pool
    connection.close()
    connection.close_pool()
    database.update(saved)


class HeldAt(logging.Handler):
    """Notes, for each log line of the run, whether its thread held a database connection as it was written."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), connection.connection is not None))


@pytest.fixture
def held_at_log_lines():
    handler = HeldAt()
    logger = monitoring.logger
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_run_hands_its_pooled_connection_back_after_each_statement(
    pooled_connection, two_step_connector, held_at_log_lines, monkeypatch
):
    execution = services.execution_create(connector=two_step_connector, input={}, enqueue=False)
    connection.close()  # back to the pool: the run starts as a worker's does, holding none
    checkouts = []
    getconn = pooled_connection.getconn

    def counted_getconn(*args, **kwargs):
        checkouts.append(1)
        return getconn(*args, **kwargs)

    monkeypatch.setattr(pooled_connection, "getconn", counted_getconn)
    held_when = []
    step_recorded, notify = monitoring.step_recorded, waiting.notify

    def recorded(record):
        held_when.append((f"step {record.name} recorded", connection.connection is not None))
        step_recorded(record)

    def announced(execution_id):
        held_when.append(("end announced", connection.connection is not None))
        notify(execution_id)

    monkeypatch.setattr(monitoring, "step_recorded", recorded)
    monkeypatch.setattr(waiting, "notify", announced)

    process_execution(execution.id, reload=False)
    # The claim, the first step's checkpoint, and the finish with the last step: one checkout each.
    assert len(checkouts) == 3
    stats = pooled_connection.get_stats()
    assert stats["pool_available"] == stats["pool_size"]  # nothing kept once the run is over

    assert Execution.objects.get(pk=execution.pk).status == Status.SUCCEEDED
    assert held_when == [("step one recorded", False), ("end announced", False), ("step two recorded", False)]
    lines = held_at_log_lines.lines
    assert [held for message, held in lines if "started" in message or "finished" in message] == [False, False]
