"""Every admin page renders for staff, nothing secret shows, and only staff get in."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from batches.models import Batch
from contacts.models import Contact
from credentials.models import Credential
from credentials.services import credential_upsert
from executions.models import Status
from templates_market.models import ConnectorTemplate, TemplateRating
from tests.admin.builders import make_daily, make_execution, make_step
from tests.factories import PASSWORD, ConnectorFactory, ContactFactory
from triggers.services import trigger_create
from webhooks.services import endpoint_create, endpoint_send_test
from workspaces.api_keys import api_key_create

SECRET_VALUE = "sk_live_very-secret-api-key-4242"


@pytest.fixture
def one_of_everything(acme, alice, bob, acme_connector, staff):
    """At least one row of every model the admin shows."""
    contact = ContactFactory(workspace=acme, first_name="Carol")
    execution = make_execution(acme_connector, status=Status.FAILED, contact=contact)
    make_step(execution, 0)
    make_step(execution, 1, name="enrich", status="failed", response=None, error="Connection refused")
    make_daily(acme_connector, days_ago=0, succeeded=3, failed=1, total_duration_ms=480)
    credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET_VALUE})
    template = ConnectorTemplate.objects.create(
        name="Phone validation", slug="phone-validation", definition=acme_connector.definition
    )
    TemplateRating.objects.create(template=template, user=alice, rating=4, review="Works well")
    Group.objects.create(name="Support")
    RefreshToken.for_user(alice).blacklist()
    return integration_secrets(acme, acme_connector, execution)


def integration_secrets(acme, connector, execution) -> list[str]:
    """An API key, a webhook trigger, a webhook endpoint with a delivery: every secret they hold, in the clear
    and as stored, none of which any admin page may show."""
    api_key, key = api_key_create(workspace=acme, name="backend", role="member", expires_at=None, created_by=None)
    trigger, trigger_secret = trigger_create(connector=connector, data={"type": "webhook"})
    endpoint, endpoint_secret = endpoint_create(
        workspace=acme, data={"url": "https://receiver.example/in", "events": ["execution.failed"]}
    )
    endpoint_send_test(endpoint=endpoint)
    Batch.objects.create(workspace=acme, connector=connector, count=0)
    return [
        key,
        api_key.key_hash,
        trigger.token,
        trigger_secret,
        trigger.signing_secret,
        endpoint_secret,
        endpoint.secret,
    ]


def every_admin_page(staff) -> list[str]:
    """The changelist and a change page of every registered model, and its add page where staff may add."""
    request = RequestFactory().get("/admin/")
    request.user = staff
    urls = []
    for model, model_admin in admin.site._registry.items():
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"no {model._meta.label} row to show"
        urls += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_change", args=[obj.pk])]
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"{prefix}_add"))
    return urls


@pytest.mark.usefixtures("one_of_everything")
def test_every_admin_page_renders_for_staff(staff_client, staff):
    pages = [reverse("admin:index"), reverse("admin:dashboard"), *every_admin_page(staff)]

    statuses = {url: staff_client.get(url).status_code for url in pages}

    assert len(admin.site._registry) == 20
    assert len(pages) == 2 + 20 * 2 + 7
    assert statuses == dict.fromkeys(pages, 200)


def test_no_admin_page_shows_an_integration_secret(staff_client, staff, one_of_everything):
    pages = [reverse("admin:index"), reverse("admin:dashboard"), *every_admin_page(staff)]
    contents = [staff_client.get(url).content.decode() for url in pages]
    assert [secret for secret in one_of_everything if any(secret in content for content in contents)] == []


@pytest.mark.usefixtures("one_of_everything")
def test_no_admin_page_shows_a_credential_value_or_its_ciphertext(staff_client, staff):
    ciphertext = Credential.objects.get().ciphertext
    pages = [reverse("admin:index"), reverse("admin:dashboard"), *every_admin_page(staff)]

    leaks = [
        url
        for url in pages
        if SECRET_VALUE in (content := staff_client.get(url).content.decode()) or ciphertext in content
    ]

    assert leaks == []


@pytest.mark.usefixtures("one_of_everything")
def test_execution_detail_shows_the_step_trace_as_escaped_json(staff_client, acme_connector):
    execution = make_execution(acme_connector, input={"name": "<b>Bob</b>"})
    make_step(execution, 0, response={"status_code": 502, "headers": {}, "body": "<script>alert(1)</script>"})

    content = staff_client.get(reverse("admin:executions_execution_change", args=[execution.pk])).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<script>alert(1)</script>" not in content
    assert "&quot;name&quot;: &quot;&lt;b&gt;Bob&lt;/b&gt;&quot;" in content
    assert "&quot;status_code&quot;: 502" in content
    assert "&quot;url&quot;: &quot;https://api.example.com/items&quot;" in content


@pytest.mark.usefixtures("one_of_everything")
def test_execution_detail_has_no_save_button(staff_client, acme_connector):
    execution = make_execution(acme_connector)

    response = staff_client.get(reverse("admin:executions_execution_change", args=[execution.pk]))

    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


def test_execution_add_page_is_forbidden(staff_client):
    response = staff_client.get(reverse("admin:executions_execution_add"))

    assert response.status_code == 403


def test_execution_cannot_be_changed_by_post(staff_client, acme_connector):
    execution = make_execution(acme_connector, status=Status.FAILED)

    response = staff_client.post(
        reverse("admin:executions_execution_change", args=[execution.pk]), {"status": "succeeded"}
    )

    execution.refresh_from_db()
    assert response.status_code == 403
    assert execution.status == Status.FAILED


def test_admin_index_links_the_dashboard(staff_client):
    content = staff_client.get(reverse("admin:index")).content.decode()

    assert f'href="{reverse("admin:dashboard")}"' in content


def test_view_site_opens_the_api_docs(staff_client):
    content = staff_client.get(reverse("admin:index")).content.decode()

    assert '<a href="/api/docs/">View site</a>' in content


def test_the_default_admin_site_is_the_console_site():
    from console.sites import ConsoleAdminSite

    assert isinstance(admin.site, ConsoleAdminSite)


def test_workspace_user_cannot_log_into_the_admin(alice):
    client = Client()

    response = client.post(reverse("admin:login"), {"username": alice.email, "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 200
    assert "Please enter the correct email and password for a staff account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_staff_logs_into_the_admin_with_email_and_password(staff):
    client = Client()

    response = client.post(reverse("admin:login"), {"username": staff.email, "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_logged_in_workspace_user_is_sent_to_the_login_page(alice):
    client = Client()
    client.force_login(alice)

    pages = [reverse("admin:index"), reverse("admin:dashboard"), reverse("admin:executions_execution_changelist")]

    assert [client.get(url)["Location"].split("?")[0] for url in pages] == [reverse("admin:login")] * 3


def test_anonymous_visitor_is_sent_to_the_login_page(db):
    response = Client().get(reverse("admin:dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={reverse('admin:dashboard')}"


def test_search_by_uuid_finds_the_executions_of_a_connector(staff_client, acme_connector, globex_connector):
    mine = make_execution(acme_connector)
    make_execution(globex_connector)

    response = staff_client.get(reverse("admin:executions_execution_changelist"), {"q": str(acme_connector.pk)})

    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]


def test_execution_list_filters_by_workspace_link(staff_client, acme, acme_connector, globex_connector):
    mine = make_execution(acme_connector)
    make_execution(globex_connector)

    response = staff_client.get(reverse("admin:executions_execution_changelist"), {"workspace": str(acme.pk)})

    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]


def test_workspace_list_shows_counts(staff_client, acme, alice, acme_connector):
    make_execution(acme_connector, status=Status.FAILED)
    make_execution(acme_connector, status=Status.SUCCEEDED)

    response = staff_client.get(reverse("admin:workspaces_workspace_changelist"))

    row = response.context["cl"].result_list[0]
    assert (row.member_count, row.connector_count, row.executions_30d, row.failed_30d) == (1, 1, 2, 1)


def test_workspace_list_links_lead_to_filtered_lists(staff_client, acme, globex, alice, bob, acme_connector):
    ConnectorFactory(workspace=globex)
    links = {
        "admin:workspaces_membership_changelist": {"workspace__id__exact": str(acme.pk)},
        "admin:connectors_connector_changelist": {"workspace__id__exact": str(acme.pk)},
        "admin:executions_execution_changelist": {"workspace": str(acme.pk)},
    }
    make_execution(acme_connector)

    counts = {
        name: staff_client.get(reverse(name), params).context["cl"].result_count for name, params in links.items()
    }

    assert counts == {
        "admin:workspaces_membership_changelist": 1,
        "admin:connectors_connector_changelist": 1,
        "admin:executions_execution_changelist": 1,
    }


def test_connector_change_form_saves_through_the_service(staff_client, acme_connector):
    url = reverse("admin:connectors_connector_change", args=[acme_connector.pk])

    response = staff_client.post(url, {"name": "Renamed", "description": "Checks phones", "_save": "Save"})

    acme_connector.refresh_from_db()
    assert response.status_code == 302
    assert (acme_connector.name, acme_connector.description, acme_connector.is_active) == (
        "Renamed",
        "Checks phones",
        False,
    )
    assert acme_connector.version == 1


def test_contact_can_be_added_and_edited_in_the_admin(staff_client, acme):
    add = staff_client.post(
        reverse("admin:contacts_contact_add"),
        {"workspace": str(acme.pk), "email": "dora@example.com", "custom_fields": "{}", "phone_valid": "unknown"},
    )
    contact = Contact.objects.get()
    change = staff_client.post(
        reverse("admin:contacts_contact_change", args=[contact.pk]),
        {"email": "dora@example.com", "company": "Acme Corp", "custom_fields": '{"tier": "gold"}'},
    )

    contact.refresh_from_db()
    assert (add.status_code, change.status_code) == (302, 302)
    assert (contact.workspace_id, contact.company, contact.custom_fields) == (acme.pk, "Acme Corp", {"tier": "gold"})
