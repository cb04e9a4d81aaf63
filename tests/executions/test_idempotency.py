"""The Idempotency-Key header of POST /connectors/{id}/execute (docs/api.md §8)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from executions import dispatch
from executions.models import Execution
from tests.conftest import client_for
from tests.executions.helpers import execute, make_connector
from tests.factories import ContactFactory


@pytest.fixture
def connector(acme, local_server):
    return make_connector(acme, [{"name": "x", "url": f"{local_server.url}/x"}])


def test_same_key_and_body_returns_the_first_execution_with_200(alice_api, connector):
    first = execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-17")

    again = execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-17")

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Execution.objects.count() == 1


def test_same_key_with_a_different_body_gets_422(alice_api, connector):
    execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-17")

    response = execute(alice_api, connector, {"a": 2}, HTTP_IDEMPOTENCY_KEY="order-17")

    assert response.status_code == 422
    assert response.json() == {
        "detail": "This Idempotency-Key was already used with a different request body.",
        "code": "idempotency_mismatch",
    }
    assert Execution.objects.count() == 1


def test_same_key_with_a_different_contact_gets_422(alice_api, connector, acme):
    execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="k")

    response = execute(
        alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="k", contact_id=ContactFactory(workspace=acme).id
    )

    assert response.status_code == 422


def test_key_order_of_the_input_does_not_matter(alice_api, connector):
    first = execute(alice_api, connector, {"a": 1, "b": 2}, HTTP_IDEMPOTENCY_KEY="k")

    again = execute(alice_api, connector, {"b": 2, "a": 1}, HTTP_IDEMPOTENCY_KEY="k")

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_replay_shows_the_execution_as_it_is_now(alice_api, connector):
    first = execute(alice_api, connector, {}, HTTP_IDEMPOTENCY_KEY="k")
    alice_api.post(f"/api/v1/executions/{first.json()['id']}/cancel")

    again = execute(alice_api, connector, {}, HTTP_IDEMPOTENCY_KEY="k")

    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


def test_key_is_per_connector(alice_api, connector, acme, local_server):
    other = make_connector(acme, [{"name": "y", "url": f"{local_server.url}/y"}])
    first = execute(alice_api, connector, {}, HTTP_IDEMPOTENCY_KEY="shared")

    response = execute(alice_api, other, {}, HTTP_IDEMPOTENCY_KEY="shared")

    assert response.status_code == 202
    assert response.json()["id"] != first.json()["id"]


def test_key_expires_after_24_hours(alice_api, connector):
    first = execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-17")
    Execution.objects.filter(pk=first.json()["id"]).update(created_at=timezone.now() - timedelta(hours=25))

    response = execute(alice_api, connector, {"a": 2}, HTTP_IDEMPOTENCY_KEY="order-17")

    assert response.status_code == 202
    assert response.json()["id"] != first.json()["id"]
    assert Execution.objects.count() == 2
    assert (
        execute(alice_api, connector, {"a": 2}, HTTP_IDEMPOTENCY_KEY="order-17").json()["id"] == response.json()["id"]
    )


def test_key_still_holds_just_inside_24_hours(alice_api, connector):
    first = execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-17")
    Execution.objects.filter(pk=first.json()["id"]).update(created_at=timezone.now() - timedelta(hours=23, minutes=59))

    response = execute(alice_api, connector, {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-17")

    assert response.status_code == 200
    assert response.json()["id"] == first.json()["id"]


def test_without_a_key_every_call_is_a_new_execution(alice_api, connector):
    first = execute(alice_api, connector, {"a": 1})
    second = execute(alice_api, connector, {"a": 1})

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]


def test_key_longer_than_255_characters_gets_400(alice_api, connector):
    response = execute(alice_api, connector, {}, HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert response.status_code == 400
    assert response.json() == {"Idempotency-Key": ["At most 255 characters."]}


def test_replayed_key_does_not_enqueue_again(alice_api, connector, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kwargs: sent.append(str(execution_id)))

    with django_capture_on_commit_callbacks(execute=True):
        first = execute(alice_api, connector, {}, HTTP_IDEMPOTENCY_KEY="k")
    with django_capture_on_commit_callbacks(execute=True):
        execute(alice_api, connector, {}, HTTP_IDEMPOTENCY_KEY="k")

    assert sent == [first.json()["id"]]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_the_same_key_make_one_execution(alice, acme, connector, monkeypatch):
    enqueued = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kwargs: enqueued.append(str(execution_id)))
    clients = 8
    barrier = threading.Barrier(clients)
    results: list[tuple[int, str]] = []

    def call() -> None:
        api = client_for(alice, acme)
        try:
            barrier.wait(timeout=10)
            response = execute(api, connector, {"order": 17}, HTTP_IDEMPOTENCY_KEY="order-17")
            results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert Execution.objects.count() == 1
    only = str(Execution.objects.get().id)
    assert sorted(results) == [(200, only)] * (clients - 1) + [(202, only)]
    assert enqueued == [only]
