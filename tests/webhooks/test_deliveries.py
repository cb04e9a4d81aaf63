"""Outbound deliveries: created when an execution ends, signed, retried with growing waits, never to refused
addresses. Driven in process here (the test transaction never commits, so nothing is enqueued by itself);
tests/webhooks/test_worker.py runs the same through a real Celery worker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import lifecycle
from executions import services as execution_services
from executions.models import Execution
from executions.runtime import process_execution
from tests.executions.helpers import json_reply, make_connector, run_to_end
from tests.local_server import Reply
from tests.webhooks.receiver import VerifyingReceiver
from webhooks import delivery as delivery_module
from webhooks import dispatch
from webhooks.models import WebhookDelivery
from webhooks.services import endpoint_create, endpoint_update


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(dispatch, "enqueue", lambda delivery_id, *, delay=0.0: calls.append((str(delivery_id), delay)))
    return calls


@pytest.fixture
def connector(acme, local_server):
    local_server.route("/api", json_reply({"ok": True}))
    local_server.route("/broken", Reply(404))
    return make_connector(acme, [{"name": "call", "url": f"{local_server.url}/{{{{input.path}}}}"}])


def endpoint(acme, local_server, events=("execution.succeeded", "execution.failed"), **extra):
    created, secret = endpoint_create(
        workspace=acme, data={"url": f"{local_server.url}/receiver", "events": list(events), **extra}
    )
    return created, secret


def run(connector, path="api") -> Execution:
    execution, _ = execution_services.execution_request(connector=connector, input={"path": path})
    return run_to_end(execution.id)


def due(delivery_id) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


def test_a_finished_execution_is_delivered_signed(acme, connector, local_server, enqueued):
    _, secret = endpoint(acme, local_server)
    receiver = VerifyingReceiver(secret)
    local_server.route("/receiver", receiver)

    execution = run(connector)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.execution_id, delivery.status) == ("execution.succeeded", execution.id, "pending")

    assert delivery_module.attempt_delivery(delivery.id) == "succeeded"

    assert receiver.refused == 0
    [received] = receiver.verified
    assert received["webhook-id"] == delivery.message_id
    payload = received["payload"]
    assert payload["type"] == "execution.succeeded"
    assert payload["timestamp"]
    assert payload["data"]["id"] == str(execution.id)
    assert payload["data"]["status"] == "succeeded"
    assert [step["name"] for step in payload["data"]["steps"]] == ["call"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status_code) == ("succeeded", 1, 204)
    assert delivery.next_attempt_at is None


def test_events_connector_filter_and_inactive_endpoints_choose_who_is_told(acme, connector, local_server, enqueued):
    other = make_connector(acme, [{"name": "call", "url": f"{local_server.url}/api"}], name="Other")
    succeeded_only, _ = endpoint(acme, local_server, events=["execution.succeeded"])
    failed_only, _ = endpoint(acme, local_server, events=["execution.failed"])
    _filtered, _ = endpoint(acme, local_server, events=["execution.succeeded"], connector=other.id)
    inactive, _ = endpoint(acme, local_server, events=["execution.succeeded"])
    endpoint_update(endpoint=inactive, data={"is_active": False})

    run(connector)
    run(connector, path="broken")

    sent = sorted(WebhookDelivery.objects.values_list("endpoint_id", "event"))
    assert sent == sorted([(succeeded_only.id, "execution.succeeded"), (failed_only.id, "execution.failed")])
    assert len(enqueued) == 0  # the test transaction never commits: sending waits for the commit


def test_a_cancelled_execution_is_an_event_too(acme, connector, local_server, enqueued):
    target, _ = endpoint(acme, local_server, events=["execution.cancelled"])
    execution, _ = execution_services.execution_request(connector=connector, input={"path": "api"})
    execution_services.execution_cancel(execution=execution)
    assert list(WebhookDelivery.objects.values_list("endpoint_id", "event", "execution_id")) == [
        (target.id, "execution.cancelled", execution.id)
    ]


def test_receiver_failing_twice_gets_the_same_message_three_times(acme, connector, local_server, enqueued, settings):
    settings.CONNECTORS_WEBHOOK_RETRY_WAITS = [5, 30, 120]
    _, secret = endpoint(acme, local_server)
    receiver = VerifyingReceiver(secret, statuses=[500, 503, 200])
    local_server.route("/receiver", receiver)
    run(connector)
    delivery = WebhookDelivery.objects.get()

    before = timezone.now()
    assert delivery_module.attempt_delivery(delivery.id) == "pending"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_status_code) == (1, 500)
    assert before + timedelta(seconds=5) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    assert enqueued == [(str(delivery.id), 5)]
    assert delivery_module.attempt_delivery(delivery.id) is None  # not due yet: a duplicate message does nothing

    due(delivery.id)
    assert delivery_module.attempt_delivery(delivery.id) == "pending"
    assert enqueued[-1] == (str(delivery.id), 30)
    due(delivery.id)
    assert delivery_module.attempt_delivery(delivery.id) == "succeeded"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status_code) == ("succeeded", 3, 200)
    assert [r["webhook-id"] for r in receiver.verified] == [delivery.message_id] * 3
    assert len({str(r["payload"]) for r in receiver.verified}) == 1


def test_delivery_fails_after_the_last_attempt(acme, connector, local_server, enqueued, settings):
    settings.CONNECTORS_WEBHOOK_RETRY_WAITS = [1, 2]
    endpoint(acme, local_server)
    local_server.route("/receiver", Reply(500))
    run(connector)
    delivery = WebhookDelivery.objects.get()
    results = []
    for _ in range(3):
        due(delivery.id)
        results.append(delivery_module.attempt_delivery(delivery.id))
    assert results == ["pending", "pending", "failed"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert local_server.hits == 1 + 3  # the step, then three attempts


def test_default_waits_start_within_10s_never_exceed_an_hour_and_allow_8_attempts(settings):
    waits = settings.CONNECTORS_WEBHOOK_RETRY_WAITS
    assert waits[0] <= 10
    assert max(waits) <= 3600
    assert waits == sorted(waits)
    assert len(waits) + 1 >= 6


def test_refused_address_is_never_contacted_and_fails_at_once(acme, connector, local_server, enqueued, settings):
    endpoint(acme, local_server)
    run(connector)
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = []
    hits = local_server.hits
    delivery = WebhookDelivery.objects.get()
    assert delivery_module.attempt_delivery(delivery.id) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status_code) == ("failed", 1, None)
    assert "CONNECTORS_ALLOWED_PRIVATE_HOSTS" in delivery.last_error or "refused" in delivery.last_error.lower()
    assert local_server.hits == hits
    assert enqueued == []


def test_a_receiver_that_does_not_answer_is_retried(acme, connector, local_server, enqueued, monkeypatch):
    monkeypatch.setattr(delivery_module, "TIMEOUT_SECONDS", 0.5)
    endpoint(acme, local_server)
    local_server.route("/receiver", Reply(200, delay=2))
    run(connector)
    delivery = WebhookDelivery.objects.get()
    assert delivery_module.attempt_delivery(delivery.id) == "pending"
    delivery.refresh_from_db()
    assert delivery.response_status_code is None
    assert "timed out" in delivery.last_error


def test_sweeper_enqueues_overdue_pending_deliveries(acme, connector, local_server, enqueued):
    endpoint(acme, local_server)
    run(connector)
    delivery = WebhookDelivery.objects.get()
    assert delivery_module.sweep_pending() == 0
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert delivery_module.sweep_pending() == 1
    assert enqueued == [(str(delivery.id), 0.0)]


def test_finishing_without_endpoints_costs_one_query(acme, connector, django_assert_num_queries):
    from executions import events

    execution, _ = execution_services.execution_request(connector=connector, input={"path": "api"})
    with django_assert_num_queries(1):
        events.execution_finished(execution, "succeeded")


def test_an_endpoint_created_while_the_execution_runs_gets_its_delivery(
    acme, connector, local_server, enqueued, monkeypatch
):
    execution, _ = execution_services.execution_request(connector=connector, input={"path": "api"})
    created = []
    finish = lifecycle.finish

    def create_endpoint_then_finish(*args, **kwargs):  # after the step, right before the finishing statement
        created.append(endpoint(acme, local_server)[0])
        return finish(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "finish", create_endpoint_then_finish)
    process_execution(execution.id)

    deliveries = WebhookDelivery.objects.filter(execution_id=execution.id)
    assert [(d.endpoint_id, d.event) for d in deliveries] == [(created[0].id, "execution.succeeded")]
