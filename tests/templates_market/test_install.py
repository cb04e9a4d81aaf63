"""Installing a template into a workspace (docs/api.md §10 install, §3 workspace rules, §4 template fields)."""

import threading

import pytest
from django.db import connection

from connectors.models import Connector
from credentials.models import Credential
from templates_market import services
from templates_market.models import ConnectorTemplate
from tests.conftest import client_for
from tests.factories import ConnectorFactory, MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role

from .conftest import definition

URL = "/api/v1/connector-templates"
REQUIRED = [
    {"service_name": "hubspot", "fields": ["access_token"], "help": "Private app token"},
    {"service_name": "slack", "fields": ["bot_token"], "help": "Bot token"},
]


def install(api, template, **body):
    return api.post(f"{URL}/{template.id}/install", body, format="json")


def store_credential(workspace, service_name: str) -> Credential:
    return Credential.objects.create(
        workspace=workspace, service_name=service_name, field_names=["token"], ciphertext="dummy", key_id="test"
    )


def test_install_creates_a_connector_in_the_callers_workspace(alice_api, acme, make_template):
    template = make_template(
        name="Slack message",
        description="Post a message",
        definition=definition(timeout_seconds=12),
        version=3,
    )

    response = install(alice_api, template)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"connector", "missing_credentials"}
    connector = body["connector"]
    assert connector["name"] == "Slack message"
    assert connector["description"] == "Post a message"
    assert connector["workspace"] == str(acme.id)
    assert connector["template"] == str(template.id)
    assert connector["template_version"] == 3
    assert connector["template_update_available"] is False
    assert connector["version"] == 1
    assert connector["is_active"] is True
    assert connector["steps"] == template.definition["steps"]
    assert connector["stats"]["total_executions"] == 0
    assert body["missing_credentials"] == []
    stored = Connector.objects.get(pk=connector["id"])
    assert stored.workspace == acme
    assert stored.definition == template.definition


def test_install_representation_is_the_connector_endpoints(alice_api, make_template):
    template = make_template()

    connector = install(alice_api, template).json()["connector"]

    assert alice_api.get(f"/api/v1/connectors/{connector['id']}").json() == connector


def test_install_counts_each_install(alice_api, make_template):
    template = make_template()

    install(alice_api, template)
    install(alice_api, template)

    template.refresh_from_db()
    assert template.install_count == 2


def test_install_reports_required_services_the_workspace_has_no_credential_for(alice_api, acme, globex, make_template):
    template = make_template(required_credentials=REQUIRED)
    store_credential(acme, "hubspot")
    store_credential(globex, "slack")

    response = install(alice_api, template)

    assert response.json()["missing_credentials"] == ["slack"]


def test_install_with_every_credential_present_reports_none_missing(alice_api, acme, make_template):
    template = make_template(required_credentials=REQUIRED)
    store_credential(acme, "hubspot")
    store_credential(acme, "slack")

    assert install(alice_api, template).json()["missing_credentials"] == []


def test_installed_connector_is_invisible_to_other_workspaces(alice_api, bob_api, make_template):
    template = make_template()

    connector_id = install(alice_api, template).json()["connector"]["id"]

    assert bob_api.get(f"/api/v1/connectors/{connector_id}").status_code == 404
    assert bob_api.get("/api/v1/connectors").json()["count"] == 0
    assert alice_api.get("/api/v1/connectors").json()["count"] == 1


def test_install_into_a_workspace_the_caller_is_not_a_member_of_is_403(alice, globex, make_template):
    template = make_template()

    response = install(client_for(alice, globex), template)

    assert response.status_code == 403
    assert not Connector.objects.exists()
    template.refresh_from_db()
    assert template.install_count == 0


def test_install_into_an_unknown_workspace_is_403(alice, make_template):
    template = make_template()
    api = client_for(alice)
    api.defaults["HTTP_X_WORKSPACE_ID"] = "00000000-0000-0000-0000-000000000000"

    assert install(api, template).status_code == 403


def test_install_with_several_workspaces_and_no_header_is_400(alice, globex, make_template):
    MembershipFactory(user=alice, workspace=globex)
    template = make_template()

    response = install(client_for(alice), template)

    assert response.status_code == 400
    assert "X-Workspace-ID" in response.json()["detail"]


def test_install_by_staff_without_a_workspace_is_400(staff_api, make_template):
    template = make_template()

    assert install(staff_api, template).status_code == 400


def test_install_with_the_header_picks_that_workspace(alice, globex, make_template):
    MembershipFactory(user=alice, workspace=globex, role=Role.MEMBER)
    template = make_template()

    response = install(client_for(alice, globex), template)

    assert response.status_code == 201
    assert response.json()["connector"]["workspace"] == str(globex.id)


def test_plain_member_can_install(acme, make_template):
    member = UserFactory()
    MembershipFactory(user=member, workspace=acme, role=Role.MEMBER)
    template = make_template()

    assert install(client_for(member, acme), template).status_code == 201


def test_private_template_cannot_be_installed_by_members(alice_api, make_template):
    template = make_template(is_public=False)

    assert install(alice_api, template).status_code == 404
    assert not Connector.objects.exists()


def test_second_and_third_installs_get_numbered_names(alice_api, make_template):
    template = make_template(name="Slack message")

    names = [install(alice_api, template).json()["connector"]["name"] for _ in range(3)]

    assert names == ["Slack message", "Slack message (2)", "Slack message (3)"]


def test_numbering_fills_the_first_free_number(alice_api, acme, make_template):
    template = make_template(name="Slack message")
    ConnectorFactory(workspace=acme, name="Slack message")
    ConnectorFactory(workspace=acme, name="Slack message (3)")

    assert install(alice_api, template).json()["connector"]["name"] == "Slack message (2)"


def test_names_are_distinct_per_workspace_only(alice_api, globex, make_template):
    template = make_template(name="Slack message")
    ConnectorFactory(workspace=globex, name="Slack message")

    assert install(alice_api, template).json()["connector"]["name"] == "Slack message"


def test_install_with_a_chosen_name(alice_api, make_template):
    template = make_template(name="Slack message")

    first = install(alice_api, template, name="Sales alerts").json()["connector"]["name"]
    second = install(alice_api, template, name="Sales alerts").json()["connector"]["name"]

    assert (first, second) == ("Sales alerts", "Sales alerts (2)")


def test_numbered_name_of_a_long_name_fits_the_column(alice_api, make_template):
    template = make_template(name="x" * 200)

    install(alice_api, template)
    name = install(alice_api, template).json()["connector"]["name"]

    assert len(name) <= 200
    assert name.endswith(" (2)")


@pytest.mark.parametrize("body", [{"name": ""}, {"name": 5}, {"name": "x" * 201}])
def test_invalid_install_name_is_400(alice_api, make_template, body):
    template = make_template()

    response = alice_api.post(f"{URL}/{template.id}/install/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_update_available_after_the_templates_definition_changes(alice_api, staff_api, make_template):
    template = make_template()
    connector_id = install(alice_api, template).json()["connector"]["id"]
    new_definition = {"steps": [{"name": "fetch", "url": "https://api.example.com/v2"}]}

    staff_api.patch(f"{URL}/{template.id}", {"definition": new_definition}, format="json")

    connector = alice_api.get(f"/api/v1/connectors/{connector_id}").json()
    assert connector["template_version"] == 1
    assert connector["template_update_available"] is True
    reinstalled = install(alice_api, template).json()["connector"]
    assert reinstalled["template_version"] == 2
    assert reinstalled["template_update_available"] is False


def test_update_not_flagged_after_a_metadata_change(alice_api, staff_api, make_template):
    template = make_template()
    connector_id = install(alice_api, template).json()["connector"]["id"]

    staff_api.patch(f"{URL}/{template.id}", {"description": "Better words"}, format="json")

    assert alice_api.get(f"/api/v1/connectors/{connector_id}").json()["template_update_available"] is False


def test_template_whose_definition_no_longer_validates_cannot_be_installed(alice_api, make_template):
    template = make_template(definition={"steps": [{"name": "Bad Name", "url": "https://x.test"}]})

    response = install(alice_api, template)

    assert response.status_code == 409
    assert response.json()["code"] == "template_invalid"
    assert not Connector.objects.exists()


def test_service_returns_connector_and_missing_credentials(acme, make_template):
    template = make_template(required_credentials=REQUIRED)

    connector, missing = services.template_install(template=template, workspace=acme)

    assert connector.template == template
    assert connector.template_version == template.version
    assert missing == ["hubspot", "slack"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_installs_keep_install_count_exact_and_names_distinct(alice, acme):
    template = ConnectorTemplate.objects.create(name="Slack message", slug="slack", definition=definition())
    threads_count = 10
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []

    def install_once():
        try:
            api = client_for(alice, acme)
            barrier.wait()
            statuses.append(install(api, template).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=install_once) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * threads_count
    template.refresh_from_db()
    assert template.install_count == threads_count
    names = set(Connector.objects.filter(workspace=acme).values_list("name", flat=True))
    assert names == {"Slack message", *(f"Slack message ({n})" for n in range(2, threads_count + 1))}


@pytest.mark.django_db(transaction=True)
def test_concurrent_installs_into_different_workspaces_all_count():
    template = ConnectorTemplate.objects.create(name="Slack message", slug="slack", definition=definition())
    workspaces = [WorkspaceFactory() for _ in range(6)]
    barrier = threading.Barrier(len(workspaces))
    errors: list[BaseException] = []

    def install_once(workspace):
        try:
            barrier.wait()
            services.template_install(template=template, workspace=workspace)
        except BaseException as error:  # reported below, so a failure in a thread fails the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=install_once, args=(w,)) for w in workspaces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    template.refresh_from_db()
    assert template.install_count == len(workspaces)
    assert Connector.objects.filter(name="Slack message").count() == len(workspaces)
