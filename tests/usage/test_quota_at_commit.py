"""On PostgreSQL a single execution's start is counted in the monthly quota when its transaction commits
(usage/0003): these tests commit, as production does (the `db` fixture's tests count at the INSERT instead,
see tests/conftest.py)."""

import logging
import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from batches.services import batch_create
from executions import services as execution_services
from executions.models import Execution
from tests.factories import ConnectorFactory
from tests.triggers.helpers import post_hook
from triggers import schedules
from triggers.models import Trigger
from triggers.services import trigger_create
from usage.models import MonthlyUsage, WorkspaceQuota
from usage.services import QUOTA_CONSTRAINT, QuotaExceeded, quota_refusals

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's"),
]


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch):
    monkeypatch.setattr("executions.dispatch.enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr("batches.dispatch.start", lambda *args, **kwargs: None)


@pytest.fixture
def connector(acme):
    return ConnectorFactory(workspace=acme)


def executions_counted(workspace) -> int:
    row = MonthlyUsage.objects.filter(workspace=workspace).first()
    return row.executions if row else 0


def test_the_start_is_counted_when_its_transaction_commits_not_before(acme, connector):
    with transaction.atomic():
        execution_services.execution_create(connector=connector, input={})
        seen_inside = executions_counted(acme)

    assert seen_inside == 0
    assert executions_counted(acme) == 1


def test_the_usage_row_is_not_locked_between_the_insert_and_the_commit(acme, connector):
    # Another transaction counting a start of the same workspace goes through while this one is still open:
    # before, the execute call's upsert held the row until its COMMIT.
    MonthlyUsage.objects.create(workspace=acme, month=timezone.now().date().replace(day=1), executions=5)
    other_done = threading.Event()

    def other_start() -> None:
        try:
            execution_services.execution_create(connector=connector, input={})
            other_done.set()
        finally:
            connection.close()

    with transaction.atomic():
        execution_services.execution_create(connector=connector, input={})
        other = threading.Thread(target=other_start)
        other.start()
        other_done.wait(timeout=10)
        other.join(timeout=10)
        finished_while_open = other_done.is_set()

    assert finished_while_open
    assert executions_counted(acme) == 7


def test_a_start_past_the_quota_fails_its_commit_and_leaves_nothing(acme, connector):
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=1)
    execution_services.execution_create(connector=connector, input={})

    with pytest.raises(QuotaExceeded) as refused:
        execution_services.execution_create(connector=connector, input={})

    assert refused.value.retry_after > 0
    assert Execution.objects.filter(connector=connector).count() == 1
    assert executions_counted(acme) == 1


def started_and_refused(client) -> tuple[float, float]:
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(client.get("/metrics").content.decode())
        for sample in family.samples
    }
    return samples["connectors_executions_started_total"], samples["connectors_quota_refusals_total"]


def test_the_metrics_count_a_start_once_committed_and_a_refused_one_as_refused(acme, connector, client, settings):
    settings.METRICS_TOKEN = ""
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=1)
    started, refused = started_and_refused(client)

    execution_services.execution_create(connector=connector, input={})
    with pytest.raises(QuotaExceeded):
        execution_services.execution_create(connector=connector, input={})

    assert started_and_refused(client) == (started + 1, refused + 1)


def test_a_rolled_back_start_is_not_counted(acme, connector):
    def start_then_fail() -> None:
        with transaction.atomic():
            execution_services.execution_create(connector=connector, input={})
            raise RuntimeError("the caller failed after the start")

    with pytest.raises(RuntimeError):
        start_then_fail()

    assert executions_counted(acme) == 0


def test_other_integrity_errors_are_not_taken_for_the_quota():
    with pytest.raises(IntegrityError), quota_refusals():
        raise IntegrityError("another constraint") from psycopg.errors.UniqueViolation("duplicate key")


def test_the_database_refuses_a_start_past_the_quota_whoever_inserts_it(acme, connector):
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=0)

    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        Execution.objects.create(
            workspace=acme, connector=connector, connector_version=connector.version, definition={}, input={}
        )

    assert refused.value.__cause__.diag.constraint_name == QUOTA_CONSTRAINT
    assert not Execution.objects.exists()


def test_a_batch_is_counted_once_for_its_items(acme, connector):
    batch_create(connector=connector, items=[{"input": {}}, {"input": {}}, {"input": {}}])

    assert executions_counted(acme) == 3


def test_a_webhook_past_the_quota_is_429_and_starts_nothing(acme, connector, anon_api):
    trigger, _secret = trigger_create(connector=connector, data={"type": "webhook"})
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=0)

    response = post_hook(anon_api, f"/hooks/{trigger.token}", {"email": "e"})

    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"
    assert not Execution.objects.exists()


def test_a_schedule_past_the_quota_starts_nothing_and_still_moves_on(acme, connector, caplog):
    trigger, _secret = trigger_create(connector=connector, data={"type": "schedule", "cron": "*/5 * * * *"})
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=0)
    now = timezone.now()
    Trigger.objects.update(next_run_at=now - timedelta(seconds=1))

    with caplog.at_level(logging.WARNING, logger="triggers.schedules"):
        assert schedules.fire_due_schedules(now=now) == 0

    trigger.refresh_from_db()
    assert trigger.next_run_at > now
    assert not Execution.objects.exists()
    assert "executions for this month" in caplog.text
