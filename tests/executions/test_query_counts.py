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
from webhooks.models import WebhookDelivery
from webhooks.services import endpoint_create


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


def test_a_one_step_run_takes_two_statements(chain):
    # The claim (one function call, no transaction of its own), then the finish: one statement for the status,
    # the step's record (the run's last step is checkpointed by the finish), the counters, the daily rollup,
    # the duration histogram, the per-step statistics and the month's usage (the HTTP requests the run sent),
    # with no transaction around it: no subscriber of executions.events writes for this workspace (it has no
    # webhook endpoint, the run no batch), which the same statement checks. Nothing reads the steps of a first
    # run, or credentials it does not use, and nothing is written after the finish.
    statements = run_queries(chain(1))

    assert len(statements) == 2
    assert "FROM executions_claim(" in statements[0]
    finish = statements[1]
    for part in (
        "UPDATE executions_execution",
        "FROM webhooks_webhookendpoint",
        "INSERT INTO executions_executionstep",
        "UPDATE connectors_connector",
        "INSERT INTO executions_connectordailystats",
        "INSERT INTO executions_connectordurationbucket",
        "INSERT INTO executions_stepdailystats",
        "INSERT INTO usage_monthlyhttprequests",
    ):
        assert part in finish


def test_with_a_webhook_endpoint_the_finish_is_a_transaction_with_its_delivery(acme, chain, local_server):
    endpoint_create(workspace=acme, data={"url": f"{local_server.url}/receiver", "events": ["execution.succeeded"]})
    statements = run_queries(chain(1))

    # The lone finishing statement changed nothing (an endpoint exists); the transaction then finishes the run,
    # reads the endpoints and writes the delivery.
    assert "FROM executions_claim(" in statements[0]
    assert "FROM webhooks_webhookendpoint" in statements[1]
    assert statements[2].startswith("SAVEPOINT")
    assert "UPDATE executions_execution" in statements[3]
    assert "INSERT INTO executions_executionstep" in statements[3]
    assert statements[-1].startswith("RELEASE SAVEPOINT")
    assert WebhookDelivery.objects.filter(event="execution.succeeded").count() == 1


def test_per_step_statistics_and_usage_ride_on_the_finishing_statement_whatever_the_steps(chain):
    for steps in (1, 5):
        statements = run_queries(chain(steps))
        for table in ("executions_stepdailystats", "usage_monthlyhttprequests"):
            writes = [sql for sql in statements if table in sql]
            assert len(writes) == 1
            assert "UPDATE executions_execution" in writes[0]


def test_the_finishing_statement_is_the_same_text_whatever_the_steps(chain):
    # The per-step statistics travel as arrays: the same text, planned once per connection for every run, and
    # within what psycopg keeps parsed (at most 4096 bytes and 50 parameters) instead of parsed again per run.
    finishes = [run_queries(chain(steps))[-1] for steps in (1, 5, 20)]

    assert all("INSERT INTO executions_stepdailystats" in sql for sql in finishes)
    assert finishes[0] == finishes[1] == finishes[2]
    assert len(finishes[0].encode()) <= 4096  # psycopg's MAX_CACHED_STATEMENT_LENGTH
    assert finishes[0].count("%s") <= 50  # psycopg's MAX_CACHED_STATEMENT_PARAMS


def test_each_further_step_costs_one_statement(chain):
    one, five = run_queries(chain(1)), run_queries(chain(5))

    assert len(five) - len(one) == 4
    checkpoints = [sql for sql in five if "INSERT INTO executions_executionstep" in sql]
    assert len(checkpoints) == 5  # four checkpoints, and the last step with the finish


def test_execute_api_takes_four_queries(alice_api, chain, django_assert_num_queries):
    connector = chain(1)
    execute(alice_api, connector)  # warm: the row-level security check, the caller's user and membership

    # Entering the workspace context, the connector, the INSERT, and leaving the context (in production:
    # BEGIN ... COMMIT around the same, 5; the COMMIT counts the execution in the month's usage, see
    # tests/usage/test_quota_at_commit.py). The user and the membership come from the process's cache
    # (workspaces.access); nothing reads the new execution back.
    with django_assert_num_queries(4):
        response = execute(alice_api, connector)

    assert response.status_code == 202
    assert response.json()["steps"] == []


def test_execute_with_a_new_idempotency_key_reads_no_execution(alice_api, chain, django_assert_num_queries):
    connector = chain(1)
    execute(alice_api, connector)

    # As without a key: a taken key makes the INSERT skip its row (ON CONFLICT DO NOTHING), so no savepoint
    # is needed around it.
    with django_assert_num_queries(4), CaptureQueriesContext(connection) as captured:
        response = execute(alice_api, connector, HTTP_IDEMPOTENCY_KEY="a-new-key")

    assert response.status_code == 202
    assert not [q for q in captured.captured_queries if "SAVEPOINT" in q["sql"]]
    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in reads if 'FROM "executions_execution"' in sql]
