"""Monthly usage and the execution quota: counted at constant cost, enforced exactly, set by staff."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from executions.models import Execution
from tests.conftest import client_for
from tests.executions.helpers import execute, json_reply, make_connector, run_api
from usage.models import MonthlyUsage, WorkspaceQuota
from usage.months import seconds_to_next_month
from usage.services import reserve_executions


@pytest.fixture
def connector(acme, local_server):
    local_server.route("/ping", json_reply({"ok": True}))
    local_server.route("/two", json_reply({"ok": True}))
    return make_connector(
        acme,
        [
            {"name": "one", "url": f"{local_server.url}/ping"},
            {"name": "two", "url": f"{local_server.url}/two"},
        ],
    )


def usage(api, **params):
    return api.get("/api/v1/workspace/usage", params)


def test_usage_starts_empty_with_no_quota(alice_api):
    response = usage(alice_api)

    assert response.status_code == 200
    assert response.json() == {
        "month": datetime.now(UTC).strftime("%Y-%m"),
        "executions": 0,
        "http_requests": 0,
        "quota": {"executions_per_month": None},
        "remaining": None,
    }


def test_executions_and_the_requests_their_steps_send_are_counted(alice_api, connector):
    run_api(alice_api, connector)
    run_api(alice_api, connector)

    body = usage(alice_api).json()

    assert (body["executions"], body["http_requests"]) == (2, 4)


def test_retried_requests_count_too(alice_api, acme, local_server):
    from tests.local_server import Reply

    local_server.route("/flaky", [Reply(503), Reply(503), json_reply({"ok": True})])
    flaky = make_connector(acme, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])

    assert run_api(alice_api, flaky)["status"] == "succeeded"

    assert usage(alice_api).json()["http_requests"] == 3


def test_another_month_has_its_own_figures(alice_api, acme):
    reserve_executions(workspace_id=acme.id, count=5, now=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))

    assert usage(alice_api, month="2026-03").json()["executions"] == 5
    assert usage(alice_api, month="2026-04").json()["executions"] == 0


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "26-01", "2026-1", "march", ""])
def test_a_bad_month_is_400(alice_api, month):
    response = usage(alice_api, month=month)

    assert response.status_code == 400
    assert list(response.json()) == ["month"]


def test_usage_is_per_workspace(alice_api, bob_api, connector):
    run_api(alice_api, connector)

    assert usage(bob_api).json()["executions"] == 0


def test_staff_set_the_quota_and_members_see_it(staff_api, alice_api, acme, connector):
    run_api(alice_api, connector)

    response = staff_api.patch(f"/api/v1/admin/workspaces/{acme.id}", {"executions_per_month": 3}, format="json")

    assert response.status_code == 200
    assert response.json()["executions_per_month"] == 3
    assert response.json()["usage"]["remaining"] == 2
    body = usage(alice_api).json()
    assert (body["quota"], body["remaining"]) == ({"executions_per_month": 3}, 2)


def test_the_quota_can_be_lifted_with_null(staff_api, acme):
    staff_api.patch(f"/api/v1/admin/workspaces/{acme.id}/", {"executions_per_month": 3}, format="json")

    response = staff_api.patch(f"/api/v1/admin/workspaces/{acme.id}/", {"executions_per_month": None}, format="json")

    assert response.status_code == 200
    assert WorkspaceQuota.objects.get(workspace=acme).executions_per_month is None


@pytest.mark.parametrize("value", [-1, 1.5, "ten", True, [3], {"n": 1}])
def test_a_negative_or_non_integer_quota_is_400_and_changes_nothing(staff_api, acme, value):
    response = staff_api.patch(f"/api/v1/admin/workspaces/{acme.id}", {"executions_per_month": value}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["executions_per_month"]
    assert not WorkspaceQuota.objects.filter(workspace=acme).exists()


def test_only_staff_set_quotas(alice_api, anon_api, acme):
    body = {"executions_per_month": 1000}

    assert alice_api.patch(f"/api/v1/admin/workspaces/{acme.id}", body, format="json").status_code == 403
    assert anon_api.patch(f"/api/v1/admin/workspaces/{acme.id}", body, format="json").status_code == 401


def test_an_unknown_workspace_is_404(staff_api):
    body = {"executions_per_month": 1}

    assert staff_api.patch("/api/v1/admin/workspaces/not-a-uuid", body, format="json").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert staff_api.patch(f"/api/v1/admin/workspaces/{missing}", body, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)  # a refused execute rolls its request transaction back
def test_an_execute_past_the_quota_is_429_with_retry_after_and_starts_nothing(alice_api, acme, connector, monkeypatch):
    monkeypatch.setattr("executions.dispatch.enqueue", lambda *args, **kwargs: None)
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=2)
    assert execute(alice_api, connector).status_code == 202
    assert execute(alice_api, connector).status_code == 202

    response = execute(alice_api, connector)

    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"
    assert response.json()["detail"]
    assert 0 < int(response["Retry-After"]) <= seconds_to_next_month() + 1
    assert Execution.objects.filter(connector=connector).count() == 2
    assert usage(alice_api).json() | {"month": None} == {
        "month": None,
        "executions": 2,
        "http_requests": 0,
        "quota": {"executions_per_month": 2},
        "remaining": 0,
    }


def test_an_idempotent_replay_is_not_counted_again(alice_api, acme, connector):
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=1)
    first = execute(alice_api, connector, HTTP_IDEMPOTENCY_KEY="k-1")
    replay = execute(alice_api, connector, HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, replay.status_code) == (202, 200)
    assert usage(alice_api).json()["executions"] == 1


def test_a_refused_start_rolls_back_with_its_transaction(acme):
    from django.db import transaction

    def start_then_fail() -> None:
        with transaction.atomic():
            reserve_executions(workspace_id=acme.id, count=4)
            raise RuntimeError("the executions could not be created")

    with pytest.raises(RuntimeError):
        start_then_fail()

    assert not MonthlyUsage.objects.filter(workspace=acme).exists()


def test_a_batch_that_would_pass_the_quota_is_refused_whole(acme):
    from usage.services import QuotaExceeded

    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=10)
    reserve_executions(workspace_id=acme.id, count=8)

    with pytest.raises(QuotaExceeded):
        reserve_executions(workspace_id=acme.id, count=3)

    assert MonthlyUsage.objects.get(workspace=acme).executions == 8
    assert reserve_executions(workspace_id=acme.id, count=2) == 10


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_executes_near_the_limit_never_overshoot(alice, acme, connector, monkeypatch):
    monkeypatch.setattr("executions.dispatch.enqueue", lambda *args, **kwargs: None)  # only the starts matter
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=25)
    reserve_executions(workspace_id=acme.id, count=15)  # ten left for twenty callers
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def call() -> None:
        api = client_for(alice, acme)
        try:
            barrier.wait(timeout=30)
            statuses.append(execute(api, connector).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [202] * 10 + [429] * 10
    assert Execution.objects.filter(connector=connector).count() == 10
    assert MonthlyUsage.objects.get(workspace=acme).executions == 25
