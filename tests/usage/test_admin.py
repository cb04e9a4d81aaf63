"""Quotas and usage in the SaaS console: the workspace page edits the quota (audited), the dashboard shows usage."""

from django.urls import reverse

from audit.models import AuditEntry
from tests.admin.conftest import staff_client  # noqa: F401 - fixture
from tests.admin.test_memberships import workspace_form
from usage.models import WorkspaceQuota
from usage.services import add_http_requests, reserve_executions
from workspaces.models import Membership


def test_staff_set_the_quota_on_the_workspace_page(staff_client, acme, alice):  # noqa: F811
    data = workspace_form(acme, list(Membership.objects.filter(workspace=acme)))
    data |= {"quota-TOTAL_FORMS": "1", "quota-0-executions_per_month": "500", "quota-0-workspace": str(acme.pk)}

    response = staff_client.post(reverse("admin:workspaces_workspace_change", args=[acme.pk]), data)

    assert response.status_code == 302
    assert WorkspaceQuota.objects.get(workspace=acme).executions_per_month == 500
    entry = AuditEntry.objects.get(action="quota.updated")
    assert (entry.actor, entry.details) == ("staff@saas.test", {"executions_per_month": [None, 500]})


def test_the_workspace_page_and_the_dashboard_show_this_months_usage(staff_client, acme):  # noqa: F811
    reserve_executions(workspace_id=acme.pk, count=42)
    add_http_requests(workspace_id=acme.pk, count=97)
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=100)

    page = staff_client.get(reverse("admin:workspaces_workspace_change", args=[acme.pk])).content.decode()
    dashboard = staff_client.get(reverse("admin:dashboard")).content.decode()
    listed = staff_client.get(reverse("admin:usage_monthlyusage_changelist")).content.decode()

    assert "Usage by month" in page
    assert ">42<" in page
    assert ">97<" in page
    assert "Acme: 42 (97 HTTP requests; quota 100)" in dashboard
    assert ">42<" in listed
    assert ">97<" in listed
