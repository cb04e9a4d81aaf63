"""Batches (docs/api.md, "Batches"): all items validated first, one transaction, progress from one query."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches import dispatch as batch_dispatch
from batches.models import Batch
from executions.models import Execution
from tests.executions.helpers import json_reply, make_connector, run_to_end
from tests.factories import ContactFactory
from tests.local_server import Reply, local_server  # noqa: F401 - fixture

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    from executions.runtime import reset_runner

    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    yield
    reset_runner()


@pytest.fixture
def connector(acme, local_server):  # noqa: F811
    local_server.route("/ok", json_reply({"ok": True}))
    local_server.route("/bad", Reply(422))
    return make_connector(
        acme,
        [{"name": "call", "url": f"{local_server.url}/{{{{input.path}}}}"}],
        input_schema={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    )


def url(connector) -> str:
    return f"/api/v1/connectors/{connector.id}/execute-batch"


def test_batch_creates_every_execution_in_item_order(alice_api, connector, acme):
    contact = ContactFactory(workspace=acme)
    items = [
        {"input": {"path": "ok"}},
        {"input": {"path": "bad"}, "contact_id": str(contact.id)},
        {"input": {"path": "ok"}},
    ]
    response = alice_api.post(url(connector), {"items": items}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"id", "count", "executions"}
    assert body["count"] == 3
    executions = {str(e.id): e for e in Execution.objects.filter(batch_id=body["id"])}
    assert sorted(executions) == sorted(body["executions"])
    assert [executions[i].input for i in body["executions"]] == [item["input"] for item in items]
    assert executions[body["executions"][1]].contact_id == contact.id
    assert {e.triggered_by for e in executions.values()} == {"batch"}
    assert {e.status for e in executions.values()} == {"queued"}


def test_one_bad_item_creates_nothing_and_names_its_index(alice_api, connector, acme):
    items = [
        {"input": {"path": "ok"}},
        {"input": {"nope": 1}},
        {"input": {"path": "ok"}, "contact_id": "00000000-0000-0000-0000-000000000000"},
    ]
    response = alice_api.post(url(connector), {"items": items}, format="json")
    assert response.status_code == 400
    errors = response.json()["items"]
    assert errors[0] == {}
    assert list(errors[1]) == ["input"]
    assert "path" in errors[1]["input"][0]
    assert errors[2] == {"contact_id": ["No such contact in this workspace."]}
    assert not Batch.objects.exists()
    assert not Execution.objects.exists()


@pytest.mark.parametrize("count", [0, 1001])
def test_zero_or_more_than_1000_items_is_400(alice_api, connector, count):
    response = alice_api.post(url(connector), {"items": [{"input": {"path": "ok"}}] * count}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()
    assert not Execution.objects.exists()


@pytest.mark.parametrize("body", [{}, {"items": "x"}, {"items": [1]}, {"items": [{"input": "x"}]}, []])
def test_malformed_batch_is_400(alice_api, connector, body):
    response = alice_api.post(url(connector), body, format="json")
    assert response.status_code == 400
    assert not Execution.objects.exists()


def test_inactive_connector_is_409(alice_api, connector):
    connector.is_active = False
    connector.save()
    assert alice_api.post(url(connector), {"items": [{"input": {"path": "ok"}}]}, format="json").status_code == 409


def test_progress_counts_by_status_and_finishes_with_the_last(alice_api, connector, django_assert_num_queries):
    items = [{"input": {"path": "ok"}}, {"input": {"path": "bad"}}, {"input": {"path": "ok"}}]
    accepted = alice_api.post(url(connector), {"items": items}, format="json").json()
    batch_url = f"/api/v1/batches/{accepted['id']}"

    first = alice_api.get(batch_url).json()
    assert first == {
        "id": accepted["id"],
        "connector": str(connector.id),
        "count": 3,
        "queued": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "created_at": first["created_at"],
        "finished_at": None,
    }
    run_to_end(accepted["executions"][0])
    run_to_end(accepted["executions"][1])
    middle = alice_api.get(batch_url + "/").json()
    assert (middle["queued"], middle["succeeded"], middle["failed"], middle["finished_at"]) == (1, 1, 1, None)

    alice_api.post(f"/api/v1/executions/{accepted['executions'][2]}/cancel")
    done = alice_api.get(batch_url).json()
    assert (done["succeeded"], done["failed"], done["cancelled"]) == (1, 1, 1)
    assert done["finished_at"] is not None
    assert Batch.objects.get().ended == 3


def test_progress_costs_one_aggregate(alice_api, connector):
    accepted = alice_api.post(url(connector), {"items": [{"input": {"path": "ok"}}] * 50}, format="json").json()
    alice_api.get(f"/api/v1/batches/{accepted['id']}")  # warm
    with CaptureQueriesContext(connection) as small:
        alice_api.get(f"/api/v1/batches/{accepted['id']}")
    accepted = alice_api.post(url(connector), {"items": [{"input": {"path": "ok"}}] * 500}, format="json").json()
    with CaptureQueriesContext(connection) as large:
        alice_api.get(f"/api/v1/batches/{accepted['id']}")
    assert len(small.captured_queries) == len(large.captured_queries)
    assert sum("GROUP BY" in q["sql"] for q in large.captured_queries) == 1


def test_another_workspace_cannot_read_or_start_a_batch(alice_api, bob_api, connector):
    accepted = alice_api.post(url(connector), {"items": [{"input": {"path": "ok"}}]}, format="json").json()
    assert bob_api.get(f"/api/v1/batches/{accepted['id']}").status_code == 404
    assert bob_api.post(url(connector), {"items": [{"input": {"path": "ok"}}]}, format="json").status_code == 404
    assert Execution.objects.count() == 1


def test_after_commit_one_message_fans_out_the_batch(connector, monkeypatch):
    from batches.services import batch_create
    from executions import dispatch

    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kw: sent.append(execution_id))
    batch, ids = batch_create(connector=connector, items=[{"input": {"path": "ok"}}] * 3)
    assert batch_dispatch.enqueue_executions(batch.id, max_duration=300) == 3
    assert sorted(sent) == sorted(ids)


def test_accepting_1000_items(alice_api, connector, capsys):
    """Not a timed assertion: prints the figure for docs/performance.md."""
    items = [{"input": {"path": "ok"}}] * 1000
    alice_api.post(url(connector), {"items": items[:1]}, format="json")  # warm
    started = time.perf_counter()
    response = alice_api.post(url(connector), {"items": items}, format="json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 202
    assert Execution.objects.filter(batch_id=response.json()["id"]).count() == 1000
    with capsys.disabled():
        print(f"\n1000-item batch accepted in {elapsed * 1000:.0f} ms")
