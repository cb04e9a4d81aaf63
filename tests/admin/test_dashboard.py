"""The staff dashboard shows the database's figures and draws its charts from the daily rollup."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from executions.models import Execution, Status
from templates_market.models import ConnectorTemplate
from tests.admin.builders import make_daily, make_executions
from tests.factories import ConnectorFactory, WorkspaceFactory

DAY_GROUP = re.compile(r'<g class="day-group" data-date="([^"]+)" data-succeeded="(\d+)" data-failed="(\d+)">')
HBAR = re.compile(r'<g class="hbar" data-label="([^"]*)" data-value="([^"]+)">')


def figures(content: str) -> dict[str, int]:
    found = re.findall(r'data-figure="([a-z0-9-]+)"><span class="value">(\d+)</span>', content)
    return {name: int(value) for name, value in found}


def chart(content: str, css_class: str) -> str:
    match = re.search(rf'<svg class="chart {css_class}".*?</svg>', content, re.S)
    assert match is not None, css_class
    return match.group(0)


@pytest.fixture
def activity(acme, globex, alice, bob, acme_connector, globex_connector):
    make_executions(acme_connector, 4, status=Status.SUCCEEDED)
    make_executions(acme_connector, 2, status=Status.FAILED)
    make_executions(globex_connector, 1, status=Status.CANCELLED)
    make_executions(globex_connector, 1, status=Status.QUEUED)
    old = make_executions(globex_connector, 3, status=Status.FAILED)
    Execution.objects.filter(pk__in=[e.pk for e in old]).update(created_at=timezone.now() - timedelta(days=3))
    ConnectorTemplate.objects.create(name="Phone validation", slug="phone-validation")
    make_daily(acme_connector, days_ago=0, succeeded=4, failed=2, total_duration_ms=6 * 100)
    make_daily(acme_connector, days_ago=29, succeeded=1, failed=0, total_duration_ms=50)
    make_daily(globex_connector, days_ago=3, succeeded=0, failed=3, total_duration_ms=3 * 2000)
    make_daily(globex_connector, days_ago=30, succeeded=9, failed=9, total_duration_ms=99999)  # outside the window


def test_dashboard_figures_equal_the_database(staff_client, activity, staff):
    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    assert figures(content) == {
        "workspaces": 2,
        "users": 3,
        "connectors": 2,
        "templates": 1,
        "executions-total": 11,
        "executions-succeeded": 4,
        "executions-failed": 5,
        "executions-last-24h": 8,
    }


def test_daily_chart_has_30_day_groups_with_the_rollup_counts(staff_client, activity):
    today = timezone.now().date()

    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    groups = DAY_GROUP.findall(chart(content, "chart-daily"))
    assert len(groups) == 30
    assert groups[0] == ((today - timedelta(days=29)).isoformat(), "1", "0")
    assert groups[-1] == (today.isoformat(), "4", "2")
    assert groups[-4] == ((today - timedelta(days=3)).isoformat(), "0", "3")
    assert sum(int(s) + int(f) for _, s, f in groups) == 10
    assert content.count('class="bar bar-succeeded"') == 30
    assert content.count('class="bar bar-failed"') == 30


def test_success_rate_is_succeeded_over_finished_in_the_window(staff_client, activity):
    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    assert 'data-rate="0.5000"' in chart(content, "chart-success-rate")
    assert ">50.0%</text>" in content


def test_top_workspaces_chart_ranks_by_finished_executions(staff_client, activity):
    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    assert HBAR.findall(chart(content, "chart-top-workspaces")) == [("Acme", "7"), ("Globex", "3")]


def test_slowest_connectors_chart_ranks_by_average_duration(staff_client, activity):
    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    assert HBAR.findall(chart(content, "chart-slowest-connectors")) == [
        ("Globex enrich (Globex)", "2000"),
        ("Acme phone check (Acme)", "92.9"),
    ]


def test_dashboard_with_no_data_draws_empty_charts(staff_client):
    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    groups = DAY_GROUP.findall(chart(content, "chart-daily"))
    assert len(groups) == 30
    assert {(s, f) for _, s, f in groups} == {("0", "0")}
    assert 'data-rate=""' in content
    assert HBAR.findall(content) == []


def test_dashboard_escapes_workspace_and_connector_names(staff_client):
    workspace = WorkspaceFactory(name='<script>alert("ws")</script>')
    connector = ConnectorFactory(workspace=workspace, name="<img src=x onerror=alert(1)>")
    make_daily(connector, days_ago=1, succeeded=1, failed=0, total_duration_ms=10)

    content = staff_client.get(reverse("admin:dashboard")).content.decode()

    assert "<script>alert" not in content
    assert "<img src=x" not in content
    assert "&lt;script&gt;alert(&quot;ws&quot;)&lt;/script&gt;" in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content
