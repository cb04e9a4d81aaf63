"""`Idempotency-Key` on POST and PATCH requests of steps: stable across retries and requeues of a step in one
execution, different between executions, overridable and switchable off."""

import uuid

import pytest
from django.db import connection

from executions import dispatch, lifecycle, services
from executions.models import Execution, Status
from executions.runtime import process_execution
from tests.executions.helpers import json_reply, make_connector, run_api, run_to_end
from tests.local_server import Reply


def keys(local_server) -> list[str | None]:
    return [request.header("Idempotency-Key") for request in local_server.requests]


def post_step(local_server, **extra):
    return {
        "name": "create",
        "method": "POST",
        "url": f"{local_server.url}/things",
        "body_type": "json",
        "body": {},
        **extra,
    }


def test_post_and_patch_carry_a_key_get_does_not(alice_api, acme, local_server):
    steps = [
        post_step(local_server),
        {"name": "change", "method": "PATCH", "url": f"{local_server.url}/things/1"},
        {"name": "read", "url": f"{local_server.url}/things/1"},
    ]
    detail = run_api(alice_api, make_connector(acme, steps))

    create, change, read = keys(local_server)
    assert uuid.UUID(create) != uuid.UUID(change)
    assert read is None
    assert detail["steps"][0]["request"]["headers"]["Idempotency-Key"] == create


def test_the_key_is_the_same_for_every_retry_and_differs_between_executions(alice_api, acme, local_server):
    local_server.route("/things", [Reply(503), Reply(500), json_reply({"id": 1}), Reply(503), json_reply({"id": 2})])
    connector = make_connector(acme, [post_step(local_server)])

    run_api(alice_api, connector)
    run_api(alice_api, connector)

    first, second = keys(local_server)[:3], keys(local_server)[3:]
    assert len(set(first)) == 1
    assert len(set(second)) == 1
    assert first[0] != second[0]


@pytest.mark.django_db(transaction=True)
def test_the_key_survives_a_forced_requeue_of_a_step_whose_answer_was_lost(acme, local_server, monkeypatch):
    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)  # this test plays the worker

    def taken_away_while_in_flight(request):
        # The sweeper decides this worker is dead while the request is in flight (a stale heartbeat), so the
        # step's answer is never checkpointed and the step is sent again by the next claim.
        if len(local_server.requests) == 1:
            Execution.objects.update(heartbeat_at="2000-01-01T00:00:00Z")
            assert lifecycle.requeue_stuck(stale_after=1) == 1
            connection.close()
        return json_reply({"id": 1})

    local_server.route("/things", taken_away_while_in_flight)
    connector = make_connector(acme, [post_step(local_server)])
    execution = services.execution_create(connector=connector, input={}, enqueue=False)

    process_execution(execution.id)  # loses its claim during the step
    assert Execution.objects.get(pk=execution.id).status == Status.QUEUED
    finished = run_to_end(execution.id)

    assert finished.status == Status.SUCCEEDED
    assert finished.requeue_count == 1
    first, again = keys(local_server)
    assert first == again
    assert first == str(uuid.uuid5(uuid.UUID("6f1d2c4e-9a57-4f0b-8a3e-5b7c1d2e3f40"), f"{execution.id}/create"))


def test_a_step_setting_the_header_itself_keeps_its_value(alice_api, acme, local_server):
    step = post_step(local_server, headers={"idempotency-key": "order-{{input.order}}"})
    run_api(alice_api, make_connector(acme, [step]), {"order": "42"})

    assert keys(local_server) == ["order-42"]
    assert [name for name in local_server.requests[0].headers if name.lower() == "idempotency-key"] == [
        "idempotency-key"
    ]


def test_idempotency_key_false_sends_none(alice_api, acme, local_server):
    run_api(alice_api, make_connector(acme, [post_step(local_server, idempotency_key=False)]))

    assert keys(local_server) == [None]


def test_each_page_of_a_paginated_post_has_its_own_key(alice_api, acme, local_server):
    local_server.route("/things", [json_reply({"items": [1], "next": "c2"}), json_reply({"items": []})])
    paginate = {"type": "cursor", "cursor_path": "next", "param": "cursor", "items_path": "items"}
    run_api(alice_api, make_connector(acme, [post_step(local_server, paginate=paginate)]))

    first, second = keys(local_server)
    assert first != second


def test_idempotency_key_must_be_a_boolean(alice_api):
    body = {"name": "x", "steps": [{"name": "s", "method": "POST", "url": "https://a.example", "idempotency_key": "x"}]}
    response = alice_api.post("/api/v1/connectors", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"steps": [{"idempotency_key": ["Must be a valid boolean."]}]}
