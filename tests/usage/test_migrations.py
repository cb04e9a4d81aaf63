"""usage/0002: the HTTP request counts move to their own table with their values, and back."""

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import WorkspaceFactory
from usage.models import MonthlyHttpRequests, MonthlyUsage

BEFORE = [("usage", "0001_initial")]
AFTER = [("usage", "0002_http_requests_apart")]
NOVEMBER, DECEMBER = date(2026, 11, 1), date(2026, 12, 1)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.fixture
def at_0001(transactional_db):
    old = migrate(BEFORE)
    try:
        yield old
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_request_counts_move_to_their_own_table_and_back(at_0001):
    acme = WorkspaceFactory()
    old_usage = at_0001.get_model("usage", "MonthlyUsage")
    old_usage.objects.create(workspace_id=acme.id, month=NOVEMBER, executions=5, http_requests=7)
    old_usage.objects.create(workspace_id=acme.id, month=DECEMBER, executions=2, http_requests=0)

    migrate(AFTER)

    assert dict(MonthlyHttpRequests.objects.values_list("month", "http_requests")) == {NOVEMBER: 7}
    assert dict(MonthlyUsage.objects.values_list("month", "executions")) == {NOVEMBER: 5, DECEMBER: 2}

    MonthlyHttpRequests.objects.create(workspace=acme, month=date(2026, 10, 1), http_requests=3)
    back = migrate(BEFORE).get_model("usage", "MonthlyUsage")

    assert sorted(back.objects.values_list("month", "executions", "http_requests")) == [
        (date(2026, 10, 1), 0, 3),
        (NOVEMBER, 5, 7),
        (DECEMBER, 2, 0),
    ]
