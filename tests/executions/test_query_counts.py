"""Queries on the execution hot path (docs/performance.md): the execute call, and a worker's run of a
queued execution, whose cost grows by one statement per step.

pytest-django runs each test inside a transaction, so the transactions of the code under test show here as
SAVEPOINT / RELEASE SAVEPOINT pairs where production sends BEGIN / COMMIT: the counts are the same.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions import services
from executions.models import Status
from executions.runtime import process_execution
from tests.executions.helpers import execute, json_reply, make_connector


@pytest.fixture
def chain(acme, local_server):
    local_server.route("/step", json_reply({"id": 42}))

    def connector(steps: int):
        definition = [
            {"name": f"s{n}", "url": f"{local_server.url}/step", "extract": {"id": "id"}} for n in range(steps)
        ]
        return make_connector(acme, definition, name=f"{steps} step(s)")

    return connector


def run_queries(connector) -> list[str]:
    execution = services.execution_create(connector=connector, input={}, enqueue=False)
    with CaptureQueriesContext(connection) as captured:
        process_execution(execution.id, reload=False)
    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    return [query["sql"] for query in captured.captured_queries]


def test_a_one_step_run_takes_eight_queries(chain):
    # The claim (one function call, no transaction of its own); the step's checkpoint (one statement); the
    # finish: BEGIN, one statement for the status, the counters, the daily rollup and the duration histogram,
    # the workspace's active webhook endpoints (executions.events), the month's usage (the HTTP requests the
    # run sent), COMMIT; then one upsert of the per-step statistics. Nothing reads the steps of a first run,
    # or credentials it does not use.
    statements = run_queries(chain(1))

    assert len(statements) == 8
    assert statements[0].startswith("SELECT * FROM executions_claim(")
    assert "INSERT INTO executions_executionstep" in statements[1]
    finish = next(sql for sql in statements if "UPDATE connectors_connector" in sql)
    assert "INSERT INTO executions_connectordailystats" in finish
    assert "INSERT INTO executions_connectordurationbucket" in finish
    assert sum("INSERT INTO usage_monthlyusage" in sql for sql in statements) == 1
    assert "INSERT INTO executions_stepdailystats" in statements[-1]


def test_per_step_statistics_cost_one_statement_per_run_whatever_the_steps(chain):
    for steps in (1, 5):
        upserts = [sql for sql in run_queries(chain(steps)) if "INSERT INTO executions_stepdailystats" in sql]
        assert len(upserts) == 1


def test_each_further_step_costs_one_statement(chain):
    one, five = run_queries(chain(1)), run_queries(chain(5))

    assert len(five) - len(one) == 4
    checkpoints = [sql for sql in five if "INSERT INTO executions_executionstep" in sql]
    assert len(checkpoints) == 5


def test_execute_api_takes_five_queries(alice_api, chain, django_assert_num_queries):
    connector = chain(1)
    execute(alice_api, connector)  # warm: the row-level security check, the caller's user and membership

    # Entering the workspace context, the connector, the month's usage (the quota check and count, one
    # upsert), the INSERT, and leaving the context (in production: BEGIN ... COMMIT around the same, 6). The
    # user and the membership come from the process's cache (workspaces.access); nothing reads the new
    # execution back.
    with django_assert_num_queries(5):
        response = execute(alice_api, connector)

    assert response.status_code == 202
    assert response.json()["steps"] == []


def test_execute_with_a_new_idempotency_key_reads_no_execution(alice_api, chain, django_assert_max_num_queries):
    connector = chain(1)
    execute(alice_api, connector)

    # As without a key (the quota upsert included), plus the savepoint around the INSERT (its unique
    # constraint settles a taken key).
    with django_assert_max_num_queries(7), CaptureQueriesContext(connection) as captured:
        response = execute(alice_api, connector, HTTP_IDEMPOTENCY_KEY="a-new-key")

    assert response.status_code == 202
    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in reads if 'FROM "executions_execution"' in sql]
