"""The console's connector history: every version with its author, and a readable diff between two."""

import pytest
from django.urls import reverse

from connectors import services
from connectors.models import ConnectorVersion
from tests.factories import normalized_step


@pytest.fixture
def edited(acme, alice, acme_connector):
    """acme_connector at version 3: a new URL by alice, then a longer max duration by nobody in particular."""
    step = normalized_step({"name": "fetch", "url": "https://api.example.com/<new>"})
    services.connector_update(connector=acme_connector, data={"steps": [step]}, user=alice)
    services.connector_update(connector=acme_connector, data={"max_duration_seconds": 600})
    return acme_connector


def versions_url(connector) -> str:
    return reverse("admin:connectors_connector_versions", args=[connector.pk])


def test_the_history_lists_every_version_with_its_author_and_diffs_the_newest_two(staff_client, edited, alice):
    response = staff_client.get(versions_url(edited))

    assert response.status_code == 200
    page = response.content.decode()
    assert [v.version for v in response.context["versions"]] == [3, 2, 1]
    assert alice.email in page
    assert (response.context["older"].version, response.context["newer"].version) == (2, 3)
    assert '<span class="del">-  &quot;max_duration_seconds&quot;: 300,</span>' in page
    assert '<span class="add">+  &quot;max_duration_seconds&quot;: 600,</span>' in page


def test_any_two_versions_can_be_compared_and_values_are_escaped(staff_client, edited):
    response = staff_client.get(versions_url(edited), {"from": 1, "to": 2})

    page = response.content.decode()
    assert "https://api.example.com/&lt;new&gt;" in page
    assert "<new>" not in page
    assert "max_duration_seconds&quot;: 300" not in "".join(
        line for kind, line in response.context["diff"] if kind in ("add", "del")
    )


def test_identical_versions_say_so(staff_client, edited):
    response = staff_client.get(versions_url(edited), {"from": 2, "to": 2})

    assert "The two definitions are identical." in response.content.decode()


@pytest.mark.parametrize("query", [{"from": 9}, {"to": "x"}])
def test_an_unknown_version_is_404(staff_client, edited, query):
    assert staff_client.get(versions_url(edited), query).status_code == 404


def test_an_unknown_connector_is_404(staff_client, db):
    url = reverse("admin:connectors_connector_versions", args=["00000000-0000-0000-0000-000000000000"])

    assert staff_client.get(url).status_code == 404


def test_the_connector_page_links_to_its_history(staff_client, edited):
    page = staff_client.get(reverse("admin:connectors_connector_change", args=[edited.pk])).content.decode()

    assert versions_url(edited) in page


def test_an_admin_rename_adds_no_version(staff_client, acme_connector):
    url = reverse("admin:connectors_connector_change", args=[acme_connector.pk])

    staff_client.post(url, {"name": "Renamed", "description": "", "is_active": "on"})

    assert ConnectorVersion.objects.filter(connector=acme_connector).count() == 1
    acme_connector.refresh_from_db()
    assert acme_connector.name == "Renamed"


def test_versions_cannot_be_changed_or_deleted_in_the_admin(staff_client, edited):
    version = ConnectorVersion.objects.filter(connector=edited).first()
    change = reverse("admin:connectors_connectorversion_change", args=[version.pk])
    delete = reverse("admin:connectors_connectorversion_delete", args=[version.pk])

    assert staff_client.get(change).status_code == 200
    assert staff_client.post(change, {}).status_code == 403
    assert staff_client.get(delete).status_code == 403


def test_non_staff_are_sent_to_the_login(client, edited):
    response = client.get(versions_url(edited))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
