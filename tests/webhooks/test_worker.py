"""Outbound deliveries through a real Celery worker and Redis: an execution ends on the worker, its delivery
is sent, and a receiver failing twice gets the third attempt, each retry a countdown message."""

import pytest

from tests.conftest import client_for
from tests.executions.helpers import execute, json_reply, make_connector
from tests.executions.test_celery_worker import celery_worker, finished, wait_for  # noqa: F401 - fixture
from tests.webhooks.receiver import VerifyingReceiver
from webhooks.models import WebhookDelivery
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def short_waits(monkeypatch):
    """The worker process reads its retry waits from the environment: one second each here."""
    monkeypatch.setenv("CONNECTORS_WEBHOOK_RETRY_WAITS", "1,1,1,1,1")


def test_receiver_failing_twice_is_retried_by_the_worker(short_waits, celery_worker, alice, acme, local_server):  # noqa: F811
    local_server.route("/api", json_reply({"ok": True}))
    connector = make_connector(acme, [{"name": "call", "url": f"{local_server.url}/api"}])
    _, secret = endpoint_create(
        workspace=acme, data={"url": f"{local_server.url}/receiver", "events": ["execution.succeeded"]}
    )
    receiver = VerifyingReceiver(secret, statuses=[500, 502, 204])
    local_server.route("/receiver", receiver)

    execution_id = execute(client_for(alice, acme), connector).json()["id"]
    wait_for(lambda: finished(execution_id), worker=celery_worker)
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(status="succeeded").first(),
        worker=celery_worker,
        what="the delivery to succeed",
    )

    assert (delivery.attempts, delivery.response_status_code, delivery.event) == (3, 204, "execution.succeeded")
    assert str(delivery.execution_id) == execution_id
    assert receiver.refused == 0
    assert [r["webhook-id"] for r in receiver.verified] == [delivery.message_id] * 3
    assert receiver.verified[0]["payload"]["data"]["id"] == execution_id
