"""Idempotency keys with Stripe's semantics, under concurrency and across scopes: one key, one execution per
workspace and connector, whatever races; a key never reaches across connectors or workspaces; keys expire
after 24 hours. (Replay and mismatch basics are in tests/executions.)"""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from executions import dispatch
from executions.models import Execution
from tests.conftest import client_for
from tests.factories import ConnectorFactory, MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch):
    """Accepted executions are not run: these tests are about what is accepted."""
    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)


def execute(client, connector, body, key):
    return client.post(f"/api/v1/connectors/{connector.id}/execute", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def race(calls) -> list:
    """Runs the calls at the same moment, each in its own thread (and database connection)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def tenant(transactional_db):
    workspace = WorkspaceFactory(name="Racers")
    users = [UserFactory(email=f"racer{n}@example.test") for n in range(4)]
    for user in users:
        MembershipFactory(user=user, workspace=workspace, role=Role.MEMBER)
    return workspace, users, ConnectorFactory(workspace=workspace)


def test_concurrent_requests_with_one_key_create_one_execution(tenant):
    workspace, users, connector = tenant
    clients = [client_for(user, workspace) for user in users]

    responses = race([lambda c=c: execute(c, connector, {"input": {"n": 1}}, "same-key") for c in clients])

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Execution.objects.filter(connector=connector).count() == 1


def test_concurrent_requests_with_one_key_and_different_bodies_create_one_execution(tenant):
    workspace, users, connector = tenant
    clients = [client_for(user, workspace) for user in users]

    responses = race(
        [lambda c=c, n=n: execute(c, connector, {"input": {"n": n}}, "contested") for n, c in enumerate(clients)]
    )

    assert sorted(r.status_code for r in responses) == [202, 422, 422, 422]
    assert Execution.objects.filter(connector=connector).count() == 1


def test_a_key_is_scoped_to_its_connector(alice_api, acme):
    first, second = ConnectorFactory(workspace=acme), ConnectorFactory(workspace=acme)

    a = execute(alice_api, first, {"input": {}}, "shared-key")
    b = execute(alice_api, second, {"input": {"other": True}}, "shared-key")

    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["id"] != b.json()["id"]


def test_a_key_is_scoped_to_its_workspace(alice_api, bob_api, acme, globex):
    acme_connector, globex_connector = ConnectorFactory(workspace=acme), ConnectorFactory(workspace=globex)
    mine = execute(alice_api, acme_connector, {"input": {"secret": "acme-only"}}, "k")

    theirs = execute(bob_api, globex_connector, {"input": {"x": 1}}, "k")

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert "acme-only" not in theirs.content.decode()
    assert Execution.objects.get(pk=theirs.json()["id"]).workspace_id == globex.id


def test_a_key_replayed_against_another_workspaces_connector_is_404_not_a_replay(alice_api, bob_api, acme):
    connector = ConnectorFactory(workspace=acme)
    execute(alice_api, connector, {"input": {"secret": "acme-only"}}, "k")

    response = execute(bob_api, connector, {"input": {"secret": "acme-only"}}, "k")

    assert response.status_code == 404
    assert "acme-only" not in response.content.decode()


def test_same_key_with_another_body_is_422_and_changes_nothing(alice_api, acme):
    connector = ConnectorFactory(workspace=acme)
    execute(alice_api, connector, {"input": {"n": 1}}, "k")

    response = execute(alice_api, connector, {"input": {"n": 2}}, "k")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_mismatch"
    assert Execution.objects.filter(connector=connector).count() == 1


def test_a_key_expires_after_24_hours(alice_api, acme):
    connector = ConnectorFactory(workspace=acme)
    old = execute(alice_api, connector, {"input": {"n": 1}}, "k").json()["id"]
    Execution.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    fresh_same_body = execute(alice_api, connector, {"input": {"n": 1}}, "k")
    replay = execute(alice_api, connector, {"input": {"n": 1}}, "k")

    assert fresh_same_body.status_code == 202
    assert fresh_same_body.json()["id"] != old
    assert (replay.status_code, replay.json()["id"]) == (200, fresh_same_body.json()["id"])


def test_a_key_is_still_honoured_just_under_24_hours(alice_api, acme):
    connector = ConnectorFactory(workspace=acme)
    first = execute(alice_api, connector, {"input": {"n": 1}}, "k").json()["id"]
    Execution.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(hours=23, minutes=59))

    response = execute(alice_api, connector, {"input": {"n": 2}}, "k")

    assert response.status_code == 422


@pytest.mark.parametrize("key", ["k" * 256, "bad\x00key"])
def test_malformed_keys_get_400(alice_api, acme, key):
    connector = ConnectorFactory(workspace=acme)

    response = alice_api.post(
        f"/api/v1/connectors/{connector.id}/execute", {"input": {}}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 400
    assert not Execution.objects.exists()
