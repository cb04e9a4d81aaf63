"""A console page costs the same number of queries for 10 rows as for 10,000."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connectors.models import Connector
from executions.models import Status
from tests.admin.builders import make_daily, make_execution, make_executions, make_step
from tests.factories import MembershipFactory, normalized_step, simple_step
from workspaces.models import Membership, Role, User, Workspace


def queries_for(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured.captured_queries)


def make_members(count: int, workspace=None) -> None:
    """`count` users (with unusable passwords: hashing is slow), each a member of `workspace` or of a workspace
    of their own."""
    users = User.objects.bulk_create([User(email=f"bulk{n}@example.com", password="!") for n in range(count)])
    workspaces = (
        [workspace] * count
        if workspace
        else Workspace.objects.bulk_create([Workspace(name=f"Bulk {n}") for n in range(count)])
    )
    Membership.objects.bulk_create(
        [Membership(user=user, workspace=ws, role=Role.OWNER) for user, ws in zip(users, workspaces, strict=True)]
    )


def make_connectors(workspace, count: int) -> None:
    steps = [normalized_step(simple_step())]
    Connector.objects.bulk_create(
        [Connector(workspace=workspace, name=f"Bulk {n}", steps=steps) for n in range(count)], batch_size=2000
    )


@pytest.mark.parametrize(
    "params",
    [{}, {"status__exact": "failed"}, {"q": "Acme"}, {"o": "-7"}],
    ids=["plain", "filtered", "searched", "sorted-by-duration"],
)
def test_execution_changelist_costs_the_same_for_10_and_10000_rows(staff_client, acme_connector, params):
    url = reverse("admin:executions_execution_changelist")
    make_executions(acme_connector, 5, status=Status.FAILED)
    make_executions(acme_connector, 5)
    staff_client.get(url)  # warm-up: content types and permission caches

    with_10 = queries_for(staff_client, url, params)
    make_executions(acme_connector, 4995, status=Status.FAILED)
    make_executions(acme_connector, 4995)
    with_10000 = queries_for(staff_client, url, params)

    assert with_10 == with_10000
    assert with_10000 <= 7


def test_connector_changelist_costs_the_same_for_10_and_10000_rows(staff_client, acme, acme_connector):
    url = reverse("admin:connectors_connector_changelist")
    make_connectors(acme, 9)
    make_executions(acme_connector, 10)
    staff_client.get(url)

    with_10 = queries_for(staff_client, url)
    make_connectors(acme, 9990)
    make_executions(acme_connector, 9990)
    with_10000 = queries_for(staff_client, url)

    assert with_10 == with_10000
    assert with_10000 <= 7


def test_workspace_changelist_costs_the_same_for_few_and_many_rows(staff_client, acme, acme_connector):
    url = reverse("admin:workspaces_workspace_changelist")
    make_executions(acme_connector, 10)
    staff_client.get(url)

    with_few = queries_for(staff_client, url)
    make_members(150)
    make_executions(acme_connector, 9990)
    with_many = queries_for(staff_client, url)

    assert with_few == with_many
    assert with_many <= 7


def test_user_and_membership_changelists_cost_the_same_for_few_and_many_rows(staff_client, acme):
    urls = [reverse("admin:workspaces_user_changelist"), reverse("admin:workspaces_membership_changelist")]
    MembershipFactory(workspace=acme)
    for url in urls:
        staff_client.get(url)

    with_few = [queries_for(staff_client, url) for url in urls]
    make_members(120, acme)
    with_many = [queries_for(staff_client, url) for url in urls]

    assert with_few == with_many


def test_execution_detail_costs_the_same_for_1_and_20_steps(staff_client, acme_connector):
    short = make_execution(acme_connector)
    make_step(short, 0)
    long = make_execution(acme_connector)
    for index in range(20):
        make_step(long, index)
    staff_client.get(reverse("admin:executions_execution_change", args=[short.pk]))

    one_step = queries_for(staff_client, reverse("admin:executions_execution_change", args=[short.pk]))
    twenty_steps = queries_for(staff_client, reverse("admin:executions_execution_change", args=[long.pk]))

    assert one_step == twenty_steps


def test_dashboard_costs_the_same_for_few_and_many_rows(staff_client, acme, acme_connector):
    url = reverse("admin:dashboard")
    make_daily(acme_connector, days_ago=0, succeeded=1, failed=0)
    staff_client.get(url)

    with_few = queries_for(staff_client, url)
    make_connectors(acme, 200)
    for connector in Connector.objects.all()[:200]:
        make_daily(connector, days_ago=3, succeeded=2, failed=1, total_duration_ms=900)
    make_executions(acme_connector, 5000)
    with_many = queries_for(staff_client, url)

    assert with_few == with_many
    assert with_many == 11
