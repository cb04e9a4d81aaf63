"""GET /connectors/{id}/stats: the numbers equal what the test created (docs/api.md §8)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import lifecycle, services
from executions.models import Execution, Status
from tests.executions.helpers import execute, json_reply, make_connector, run_to_end
from tests.local_server import Reply


@pytest.fixture
def connector(acme, local_server):
    return make_connector(acme, [{"name": "x", "url": f"{local_server.url}/x"}])


def finish_at(monkeypatch, connector, status: str, *, duration_ms: int, days_ago: int = 0) -> Execution:
    """An execution claimed and finished through the lifecycle services, `days_ago` days back, having run for
    exactly `duration_ms`."""
    execution = services.execution_create(connector=connector, input={}, enqueue=False)
    execution = lifecycle.claim(execution.id)
    finished = timezone.now() - timedelta(days=days_ago)
    # The claim's started_at, in the row and in the worker's copy that finish() measures the duration from.
    execution.started_at = finished - timedelta(milliseconds=duration_ms)
    Execution.objects.filter(pk=execution.pk).update(started_at=execution.started_at)
    with monkeypatch.context() as patch:
        patch.setattr(timezone, "now", lambda: finished)
        assert lifecycle.finish(execution, status=status, output={}, error=None, notes=[])
    return execution


def stats(api, connector) -> dict:
    response = api.get(f"/api/v1/connectors/{connector.id}/stats")
    assert response.status_code == 200
    return response.json()


def test_stats_without_executions(alice_api, connector):
    body = stats(alice_api, connector)

    today = timezone.now().date()
    assert body == {
        "total_executions": 0,
        "successful_executions": 0,
        "failed_executions": 0,
        "success_rate": None,
        "avg_duration_ms": None,
        "p95_duration_ms": None,
        "last_executed_at": None,
        "daily": [
            {"date": (today - timedelta(days=29 - n)).isoformat(), "succeeded": 0, "failed": 0} for n in range(30)
        ],
        "steps": {
            step["name"]: {
                "requests": 0,
                "status_codes": {},
                "retries": 0,
                "rate_limited": 0,
                "p50_ms": None,
                "p95_ms": None,
            }
            for step in connector.steps
        },
    }


def test_stats_count_rate_average_and_p95(alice_api, connector, monkeypatch):
    for duration in range(10, 170, 10):  # 16 successes: 10 .. 160 ms
        finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=duration)
    for duration in (300, 400, 500, 2000):  # 4 failures
        finish_at(monkeypatch, connector, Status.FAILED, duration_ms=duration)

    body = stats(alice_api, connector)

    assert body["total_executions"] == 20
    assert body["successful_executions"] == 16
    assert body["failed_executions"] == 4
    assert body["success_rate"] == 0.8
    assert body["avg_duration_ms"] == (sum(range(10, 170, 10)) + 300 + 400 + 500 + 2000) / 20
    assert body["p95_duration_ms"] == 500  # the 19th of 20 sorted durations (nearest rank)
    assert body["daily"][-1] == {"date": timezone.now().date().isoformat(), "succeeded": 16, "failed": 4}


def test_stats_daily_has_30_days_oldest_first_today_last(alice_api, connector, monkeypatch):
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=100, days_ago=0)
    finish_at(monkeypatch, connector, Status.FAILED, duration_ms=100, days_ago=0)
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=100, days_ago=3)
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=100, days_ago=3)
    finish_at(monkeypatch, connector, Status.FAILED, duration_ms=100, days_ago=29)
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=100, days_ago=30)

    body = stats(alice_api, connector)

    today = timezone.now().date()
    daily = body["daily"]
    assert len(daily) == 30
    assert daily[0] == {"date": (today - timedelta(days=29)).isoformat(), "succeeded": 0, "failed": 1}
    assert daily[26] == {"date": (today - timedelta(days=3)).isoformat(), "succeeded": 2, "failed": 0}
    assert daily[29] == {"date": today.isoformat(), "succeeded": 1, "failed": 1}
    assert sum(day["succeeded"] + day["failed"] for day in daily) == 5
    assert [day["date"] for day in daily] == sorted(day["date"] for day in daily)
    assert body["total_executions"] == 6
    assert body["successful_executions"] == 4
    assert body["success_rate"] == round(4 / 6, 4)


def test_cancelled_executions_count_in_the_total_but_not_the_rate(alice_api, connector, monkeypatch):
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=100)
    finish_at(monkeypatch, connector, Status.FAILED, duration_ms=300)
    queued = execute(alice_api, connector).json()["id"]
    alice_api.post(f"/api/v1/executions/{queued}/cancel")

    body = stats(alice_api, connector)

    assert (body["total_executions"], body["successful_executions"], body["failed_executions"]) == (3, 1, 1)
    assert body["success_rate"] == 0.5
    assert body["avg_duration_ms"] == 200.0
    assert body["p95_duration_ms"] == 300
    assert body["daily"][-1]["succeeded"] + body["daily"][-1]["failed"] == 2


def test_last_executed_at_is_the_latest_finish(alice_api, connector, monkeypatch):
    finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=10, days_ago=2)
    latest = finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=10)

    body = stats(alice_api, connector)

    latest.refresh_from_db()
    assert body["last_executed_at"] == latest.finished_at.isoformat().replace("+00:00", "Z")


def test_stats_of_real_runs(alice_api, acme, local_server):
    local_server.route("/x", [json_reply({"ok": True}), json_reply({"ok": True}), Reply(404)])
    connector = make_connector(acme, [{"name": "x", "url": f"{local_server.url}/x"}])
    executions = [run_to_end(execute(alice_api, connector).json()["id"]) for _ in range(3)]

    body = stats(alice_api, connector)

    durations = sorted(e.duration_ms for e in executions)
    assert (body["total_executions"], body["successful_executions"], body["failed_executions"]) == (3, 2, 1)
    assert body["success_rate"] == 0.6667
    assert body["avg_duration_ms"] == round(sum(durations) / 3, 1)
    assert body["p95_duration_ms"] == durations[-1]
    assert body["daily"][-1] == {"date": timezone.now().date().isoformat(), "succeeded": 2, "failed": 1}


def test_stats_of_another_workspaces_connector_get_404(bob_api, connector):
    assert bob_api.get(f"/api/v1/connectors/{connector.id}/stats").status_code == 404


def test_stats_query_count_does_not_grow_with_executions(
    alice_api, connector, monkeypatch, django_assert_max_num_queries
):
    for days_ago in range(30):
        finish_at(monkeypatch, connector, Status.SUCCEEDED, duration_ms=days_ago + 1, days_ago=days_ago)

    with django_assert_max_num_queries(10):
        body = stats(alice_api, connector)

    assert body["successful_executions"] == 30
