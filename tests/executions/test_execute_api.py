"""The execute, executions and cancel endpoints (docs/api.md §8): status codes, representations, filters."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connectors.engine.http import SafeHttpClient
from executions import dispatch, services
from executions.models import Execution, Status
from executions.runtime import process_execution
from tests.executions.helpers import execute, json_reply, make_connector, run_to_end
from tests.factories import ContactFactory

EXECUTION_FIELDS = {
    "id",
    "connector",
    "workspace",
    "connector_version",
    "status",
    "input",
    "output",
    "error",
    "notes",
    "contact",
    "attempts",
    "triggered_by",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "steps",
}
# Authentication, workspace and row-level-security set-up, the connector, the idempotency lookup, the insert
# and the re-read with its steps: none of it depends on the connector's size.
EXECUTE_MAX_QUERIES = 13
STEP_FIELDS = {
    "name",
    "status",
    "attempts",
    "request",
    "response",
    "extracted",
    "error",
    "started_at",
    "finished_at",
    "duration_ms",
}


@pytest.fixture
def connector(acme, local_server):
    local_server.route("/lookup", json_reply({"valid": True}))
    return make_connector(
        acme,
        [{"name": "lookup", "url": f"{local_server.url}/lookup", "query": {"phone": "{{input.phone}}"}}],
        input_schema={"type": "object", "required": ["phone"], "properties": {"phone": {"type": "string"}}},
    )


def test_execute_answers_202_with_the_queued_execution(alice_api, connector, acme):
    response = execute(alice_api, connector, {"phone": "+331"})

    assert response.status_code == 202
    body = response.json()
    assert set(body) == EXECUTION_FIELDS
    assert body["connector"] == str(connector.id)
    assert body["workspace"] == str(acme.id)
    assert body["connector_version"] == 1
    assert body["status"] == "queued"
    assert body["input"] == {"phone": "+331"}
    assert body["output"] == {}
    assert body["error"] is None
    assert body["contact"] is None
    assert body["attempts"] == 0
    assert body["triggered_by"] == "api"
    assert body["started_at"] is None
    assert body["finished_at"] is None
    assert body["duration_ms"] is None
    assert body["steps"] == []


def test_execute_with_a_trailing_slash_works(alice_api, connector):
    response = alice_api.post(f"/api/v1/connectors/{connector.id}/execute/", {"input": {"phone": "1"}}, format="json")

    assert response.status_code == 202


def test_execute_enqueues_the_execution_once_the_transaction_commits(
    alice_api, connector, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kwargs: sent.append((str(execution_id), kwargs)))

    with django_capture_on_commit_callbacks(execute=True):
        response = execute(alice_api, connector, {"phone": "1"})

    assert sent == [(response.json()["id"], {"max_duration": 300})]


def test_executed_run_is_shown_with_its_steps(alice_api, connector, local_server):
    execution_id = execute(alice_api, connector, {"phone": "+33 1"}).json()["id"]
    run_to_end(execution_id)

    body = alice_api.get(f"/api/v1/executions/{execution_id}").json()

    assert body["status"] == "succeeded"
    assert body["output"] == {"lookup": {}}
    assert body["attempts"] == 1
    assert body["duration_ms"] >= 0
    assert body["started_at"] <= body["finished_at"]
    [step] = body["steps"]
    assert set(step) == STEP_FIELDS
    assert step["name"] == "lookup"
    assert step["status"] == "succeeded"
    assert step["attempts"] == 1
    assert step["request"] == {
        "method": "GET",
        "url": f"{local_server.url}/lookup?phone=%2B33+1",
        "headers": {},
    }
    assert step["response"]["status_code"] == 200
    assert step["response"]["body"] == {"valid": True}
    assert step["response"]["headers"]["Content-Type"] == "application/json"
    assert step["error"] is None


def test_inactive_connector_gets_409(alice_api, connector):
    connector.is_active = False
    connector.save(update_fields=["is_active"])

    response = execute(alice_api, connector, {"phone": "1"})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "The connector is inactive; activate it before executing it.",
        "code": "connector_inactive",
    }
    assert Execution.objects.count() == 0


def test_input_missing_a_required_property_gets_400_with_the_message(alice_api, connector):
    response = execute(alice_api, connector, {"name": "x"})

    assert response.status_code == 400
    assert response.json() == {"input": ["'phone' is a required property"]}
    assert Execution.objects.count() == 0


def test_input_of_the_wrong_type_gets_400_naming_the_property(alice_api, connector):
    response = execute(alice_api, connector, {"phone": 33})

    assert response.status_code == 400
    assert response.json() == {"input": ["phone: 33 is not of type 'string'"]}


def test_input_that_is_not_an_object_gets_400(alice_api, connector):
    response = alice_api.post(f"/api/v1/connectors/{connector.id}/execute", {"input": [1]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"input": ["Must be an object."]}


def test_execute_with_a_contact_of_the_workspace(alice_api, connector, acme):
    contact = ContactFactory(workspace=acme)

    response = execute(alice_api, connector, {"phone": "1"}, contact_id=contact.id)

    assert response.status_code == 202
    assert response.json()["contact"] == str(contact.id)


def test_execute_with_a_contact_of_another_workspace_gets_400(alice_api, connector, globex):
    contact = ContactFactory(workspace=globex)

    response = execute(alice_api, connector, {"phone": "1"}, contact_id=contact.id)

    assert response.status_code == 400
    assert response.json() == {"contact_id": ["No such contact in this workspace."]}


def test_executing_another_workspaces_connector_gets_404(bob_api, connector):
    response = execute(bob_api, connector, {"phone": "1"})

    assert response.status_code == 404
    assert Execution.objects.count() == 0


def test_execute_api_runs_at_most_a_fixed_number_of_queries(alice_api, connector, django_assert_max_num_queries):
    execute(alice_api, connector, {"phone": "warm-up"})

    with django_assert_max_num_queries(EXECUTE_MAX_QUERIES):
        response = execute(alice_api, connector, {"phone": "1"}, HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 202


def test_execute_query_count_does_not_grow_with_steps(alice_api, acme, connector, local_server):
    many = make_connector(acme, [{"name": f"s{i}", "url": f"{local_server.url}/x"} for i in range(20)])
    execute(alice_api, connector, {"phone": "warm-up"})

    with CaptureQueriesContext(connection) as one_step:
        execute(alice_api, connector, {"phone": "1"})
    with CaptureQueriesContext(connection) as twenty_steps:
        execute(alice_api, many, {})

    assert len(twenty_steps) == len(one_step)


# ------------------------------------------------------------------------------------------------------------
# Listing and detail


@pytest.fixture
def three_executions(connector, acme, local_server):
    """One succeeded (created 2 days ago), one failed and one queued execution of `connector`."""
    old = services.execution_create(connector=connector, input={"phone": "old"}, enqueue=False)
    run_to_end(old.id)
    Execution.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    local_server.route("/lookup", json_reply({"error": "nope"}, status=404))
    failed = services.execution_create(connector=connector, input={"phone": "bad"}, enqueue=False)
    run_to_end(failed.id)
    queued = services.execution_create(connector=connector, input={"phone": "later"}, enqueue=False)
    return {"succeeded": str(old.id), "failed": str(failed.id), "queued": str(queued.id)}


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_list_is_paginated_newest_first(alice_api, three_executions):
    response = alice_api.get("/api/v1/executions")

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert response.json()["next"] is None
    assert response.json()["previous"] is None
    assert ids(response) == [three_executions["queued"], three_executions["failed"], three_executions["succeeded"]]


@pytest.mark.parametrize("status", ["succeeded", "failed", "queued"])
def test_list_filters_by_status(alice_api, three_executions, status):
    response = alice_api.get(f"/api/v1/executions?status={status}")

    assert ids(response) == [three_executions[status]]


def test_list_filters_by_connector(alice_api, three_executions, acme, local_server):
    other = make_connector(acme, [{"name": "other", "url": f"{local_server.url}/x"}])
    other_execution = services.execution_create(connector=other, input={}, enqueue=False)

    response = alice_api.get(f"/api/v1/executions?connector={other.id}")

    assert ids(response) == [str(other_execution.id)]


def test_list_filters_by_since(alice_api, three_executions):
    since = (timezone.now() - timedelta(days=1)).isoformat()

    response = alice_api.get("/api/v1/executions", {"since": since})

    assert ids(response) == [three_executions["queued"], three_executions["failed"]]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("status=done", {"status": ["Use one of queued, running, succeeded, failed, cancelled."]}),
        ("since=yesterday", {"since": ["Use an ISO 8601 date-time."]}),
        ("connector=nope", {"connector": ["Use a connector id (a UUID)."]}),
    ],
)
def test_list_with_a_bad_filter_gets_400(alice_api, three_executions, query, error):
    response = alice_api.get(f"/api/v1/executions?{query}")

    assert response.status_code == 400
    assert response.json() == error


def test_list_shows_only_the_callers_workspace(bob_api, three_executions):
    response = bob_api.get("/api/v1/executions")

    assert response.json()["count"] == 0


def test_connector_executions_lists_that_connector_only(alice_api, connector, three_executions, acme, local_server):
    other = make_connector(acme, [{"name": "other", "url": f"{local_server.url}/x"}])
    services.execution_create(connector=other, input={}, enqueue=False)

    response = alice_api.get(f"/api/v1/connectors/{connector.id}/executions")

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert ids(response) == [three_executions["queued"], three_executions["failed"], three_executions["succeeded"]]


def test_connector_executions_filter_by_status(alice_api, connector, three_executions):
    response = alice_api.get(f"/api/v1/connectors/{connector.id}/executions/?status=failed")

    assert ids(response) == [three_executions["failed"]]


def test_connector_executions_of_another_workspace_get_404(bob_api, connector):
    assert bob_api.get(f"/api/v1/connectors/{connector.id}/executions").status_code == 404


def test_detail_of_another_workspaces_execution_gets_404(bob_api, three_executions):
    response = bob_api.get(f"/api/v1/executions/{three_executions['succeeded']}")

    assert response.status_code == 404


def test_list_query_count_does_not_grow_with_executions(alice_api, connector, django_assert_max_num_queries):
    run_to_end(services.execution_create(connector=connector, input={"phone": "0"}, enqueue=False).id)
    alice_api.get("/api/v1/executions")  # the caller's first request reads its user and membership
    with CaptureQueriesContext(connection) as one_execution:
        alice_api.get("/api/v1/executions")
    for n in range(1, 10):
        run_to_end(services.execution_create(connector=connector, input={"phone": str(n)}, enqueue=False).id)

    with CaptureQueriesContext(connection) as ten_executions:
        response = alice_api.get("/api/v1/executions")

    assert response.json()["count"] == 10
    assert len(ten_executions) == len(one_execution)


# ------------------------------------------------------------------------------------------------------------
# Cancel


def test_cancelling_a_queued_execution_cancels_it(alice_api, connector, local_server):
    execution_id = execute(alice_api, connector, {"phone": "1"}).json()["id"]

    response = alice_api.post(f"/api/v1/executions/{execution_id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["error"] == "Cancelled on request."
    assert response.json()["finished_at"] is not None
    assert process_execution(execution_id) is None
    assert local_server.hits == 0


def test_cancelled_execution_counts_in_total_only(alice_api, connector):
    execution_id = execute(alice_api, connector, {"phone": "1"}).json()["id"]

    alice_api.post(f"/api/v1/executions/{execution_id}/cancel/")

    connector.refresh_from_db()
    assert (connector.total_executions, connector.successful_executions, connector.failed_executions) == (1, 0, 0)


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_cancelling_a_finished_execution_gets_409(alice_api, three_executions, outcome):
    response = alice_api.post(f"/api/v1/executions/{three_executions[outcome]}/cancel")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"The execution has already finished ({outcome}).",
        "code": "already_finished",
    }


def test_cancelling_twice_gets_409(alice_api, connector):
    execution_id = execute(alice_api, connector, {"phone": "1"}).json()["id"]
    alice_api.post(f"/api/v1/executions/{execution_id}/cancel")

    response = alice_api.post(f"/api/v1/executions/{execution_id}/cancel")

    assert response.status_code == 409


def test_cancelling_a_running_execution_stops_it_before_its_next_step(alice_api, acme, local_server, monkeypatch):
    connector = make_connector(
        acme, [{"name": "one", "url": f"{local_server.url}/one"}, {"name": "two", "url": f"{local_server.url}/two"}]
    )
    execution_id = execute(alice_api, connector).json()["id"]
    send = SafeHttpClient.send

    def send_then_cancel(client, request, **kwargs):
        # The cancel lands while step one is in flight; the step's checkpoint is the check before step two.
        response = send(client, request, **kwargs)
        assert alice_api.post(f"/api/v1/executions/{execution_id}/cancel").status_code == 200
        return response

    monkeypatch.setattr(SafeHttpClient, "send", send_then_cancel)
    process_execution(execution_id)

    body = alice_api.get(f"/api/v1/executions/{execution_id}").json()
    assert body["status"] == "cancelled"
    assert [(s["name"], s["status"]) for s in body["steps"]] == [("one", "succeeded")]
    assert [r.path for r in local_server.requests] == ["/one"]
    connector.refresh_from_db()
    assert (connector.total_executions, connector.successful_executions, connector.failed_executions) == (1, 0, 0)


def test_cancelling_another_workspaces_execution_gets_404(bob_api, alice_api, connector):
    execution_id = execute(alice_api, connector, {"phone": "1"}).json()["id"]

    response = bob_api.post(f"/api/v1/executions/{execution_id}/cancel")

    assert response.status_code == 404
    assert Execution.objects.get(pk=execution_id).status == Status.QUEUED
