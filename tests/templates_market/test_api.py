"""Browsing and staff curation of templates (docs/api.md §10)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connectors.models import Connector
from templates_market.models import ConnectorTemplate
from tests.conftest import client_for
from tests.factories import ConnectorFactory

from .conftest import TEMPLATE_KEYS, definition

URL = "/api/v1/connector-templates"


def names(response) -> list[str]:
    return [item["name"] for item in response.json()["results"]]


# --- browsing -----------------------------------------------------------------------------------------------


def test_list_is_paginated_and_items_carry_the_whole_representation(alice_api, make_template):
    make_template(
        name="Slack message",
        tags=["slack", "chat"],
        category="Messaging",
        required_credentials=[{"service_name": "slack", "fields": ["bot_token"], "help": "Bot token"}],
    )

    response = alice_api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    item = body["results"][0]
    assert set(item) == TEMPLATE_KEYS
    assert set(item["definition"]) == {"input_schema", "max_duration_seconds", "steps", "contact_mapping"}
    assert item["required_credentials"] == [{"service_name": "slack", "fields": ["bot_token"], "help": "Bot token"}]
    assert item["tags"] == ["slack", "chat"]
    assert item["rating_average"] is None
    assert item["version"] == 1


def test_list_and_detail_answer_with_and_without_trailing_slash(alice_api, make_template):
    template = make_template()

    assert alice_api.get(URL).status_code == 200
    assert alice_api.get(f"{URL}/").status_code == 200
    assert alice_api.get(f"{URL}/{template.id}").status_code == 200
    assert alice_api.get(f"{URL}/{template.id}/").status_code == 200


def test_anonymous_gets_401(anon_api, make_template):
    template = make_template()

    assert anon_api.get(URL).status_code == 401
    assert anon_api.get(f"{URL}/{template.id}").status_code == 401
    assert anon_api.post(f"{URL}/{template.id}/rate", {"rating": 5}, format="json").status_code == 401
    assert anon_api.post(f"{URL}/{template.id}/install", {}, format="json").status_code == 401


def test_user_without_workspace_can_browse(loner, make_template):
    make_template(name="Visible")

    response = client_for(loner).get(URL)

    assert response.status_code == 200
    assert names(response) == ["Visible"]


def test_user_with_several_workspaces_browses_without_header(alice, globex, make_template):
    from tests.factories import MembershipFactory

    MembershipFactory(user=alice, workspace=globex)
    make_template(name="Visible")

    assert client_for(alice).get(URL).status_code == 200


def test_private_template_is_not_listed_for_members(alice_api, make_template):
    make_template(name="Public")
    make_template(name="Private", is_public=False)

    assert names(alice_api.get(URL)) == ["Public"]


def test_private_template_is_404_for_members(alice_api, make_template):
    template = make_template(is_public=False)

    response = alice_api.get(f"{URL}/{template.id}")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_staff_sees_private_templates(staff_api, make_template):
    make_template(name="Public")
    private = make_template(name="Private", is_public=False)

    assert names(staff_api.get(URL)) == ["Private", "Public"]
    assert staff_api.get(f"{URL}/{private.id}").json()["is_public"] is False


def test_unknown_id_is_404(alice_api, db):
    assert alice_api.get(f"{URL}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert alice_api.get(f"{URL}/not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=Messaging", ["Slack"]),
        ("category=messaging", ["Slack"]),
        ("featured=true", ["Slack"]),
        ("featured=false", ["HubSpot", "Stripe"]),
        ("official=true", ["HubSpot"]),
        ("official=false", ["Slack", "Stripe"]),
        ("featured=false&official=false", ["Stripe"]),
    ],
)
def test_filters(alice_api, make_template, query, expected):
    make_template(name="Slack", category="Messaging", is_featured=True)
    make_template(name="HubSpot", category="CRM", is_official=True)
    make_template(name="Stripe", category="Payments")

    response = alice_api.get(f"{URL}?{query}")

    assert response.status_code == 200
    assert names(response) == expected


@pytest.mark.parametrize("param", ["featured", "official"])
def test_invalid_boolean_filter_is_400(alice_api, db, param):
    response = alice_api.get(f"{URL}?{param}=maybe")

    assert response.status_code == 400
    assert param in response.json()


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("slack", ["Slack message"]),
        ("SLACK", ["Slack message"]),
        ("invoice", ["Stripe customer"]),
        ("crm", ["HubSpot contact"]),
        ("nothing-like-this", []),
    ],
    ids=["name", "case-insensitive", "description", "tag", "no-match"],
)
def test_search_matches_name_description_and_tags(alice_api, make_template, search, expected):
    make_template(name="Slack message", description="Post to a channel", tags=["chat"])
    make_template(name="Stripe customer", description="Create a customer before the first invoice", tags=["billing"])
    make_template(name="HubSpot contact", description="Create a contact", tags=["crm", "sales"])

    assert names(alice_api.get(f"{URL}?search={search}")) == expected


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("name", ["Alpha", "Bravo", "Charlie"]),
        ("-rating_average", ["Charlie", "Alpha", "Bravo"]),
        ("-install_count", ["Bravo", "Charlie", "Alpha"]),
        ("-created_at", ["Alpha", "Charlie", "Bravo"]),
    ],
)
def test_ordering(alice_api, make_template, ordering, expected):
    now = timezone.now()
    alpha = make_template(name="Alpha", rating_average=3.5, rating_count=2, install_count=1)
    bravo = make_template(name="Bravo", rating_average=None, install_count=30)
    charlie = make_template(name="Charlie", rating_average=4.8, rating_count=5, install_count=7)
    for template, age in ((alpha, 1), (bravo, 3), (charlie, 2)):
        ConnectorTemplate.objects.filter(pk=template.pk).update(created_at=now - timedelta(days=age))

    response = alice_api.get(f"{URL}?ordering={ordering}")

    assert response.status_code == 200
    assert names(response) == expected


def test_unknown_ordering_is_400_with_the_allowed_values(alice_api, db):
    response = alice_api.get(f"{URL}?ordering=-id")

    assert response.status_code == 400
    assert response.json() == {
        "ordering": ["Unknown ordering '-id'; use one of: name, -rating_average, -install_count, -created_at."]
    }


def test_page_size_is_capped_at_100(alice_api, make_template):
    for _ in range(3):
        make_template()

    body = alice_api.get(f"{URL}?page_size=2").json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_list_query_count_does_not_grow_with_templates(alice_api, make_template):
    make_template()
    alice_api.get(URL)  # the caller's first request reads its user
    with CaptureQueriesContext(connection) as few:
        assert alice_api.get(URL).status_code == 200
    for _ in range(15):
        make_template(required_credentials=[{"service_name": "x", "fields": ["k"], "help": ""}], tags=["a"])
    with CaptureQueriesContext(connection) as many:
        assert alice_api.get(URL).status_code == 200

    assert len(many) == len(few)


# --- staff writes -------------------------------------------------------------------------------------------

NEW_TEMPLATE = {
    "name": "Phone validation",
    "description": "Validate a phone number with Numverify",
    "category": "Data quality",
    "tags": ["phone", "numverify"],
    "definition": {
        "input_schema": {"type": "object", "required": ["phone"], "properties": {"phone": {"type": "string"}}},
        "steps": [
            {
                "name": "validate",
                "url": "https://apilayer.net/api/validate",
                "query": {"number": "{{input.phone}}"},
                "auth": {"type": "api_key", "in": "query", "name": "access_key", "value": "{{workspace.numverify}}"},
                "extract": {"valid": "valid"},
            }
        ],
        "contact_mapping": {"phone_valid": "{{steps.validate.valid}}"},
    },
    "required_credentials": [{"service_name": "numverify", "fields": ["api_key"], "help": "From apilayer.com"}],
}


def test_staff_creates_a_template_with_a_normalized_definition(staff_api, staff):
    response = staff_api.post(URL, NEW_TEMPLATE, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == TEMPLATE_KEYS
    assert body["slug"] == "phone-validation"
    assert body["version"] == 1
    assert body["is_public"] is True
    assert body["is_featured"] is False
    assert body["install_count"] == 0
    assert body["definition"]["max_duration_seconds"] == 300
    step = body["definition"]["steps"][0]
    assert step["method"] == "GET"
    assert step["timeout_seconds"] == 30
    assert step["retry"] == {"max_attempts": 3}
    template = ConnectorTemplate.objects.get(pk=body["id"])
    assert template.author == staff
    assert template.definition == body["definition"]


def test_create_answers_with_trailing_slash_too(staff_api):
    assert staff_api.post(f"{URL}/", NEW_TEMPLATE, format="json").status_code == 201


def test_derived_slug_is_made_unique(staff_api, make_template):
    make_template(slug="phone-validation")

    response = staff_api.post(URL, NEW_TEMPLATE, format="json")

    assert response.json()["slug"] == "phone-validation-2"


def test_explicit_slug_that_is_taken_is_400(staff_api, make_template):
    make_template(slug="taken")

    response = staff_api.post(URL, {**NEW_TEMPLATE, "slug": "taken"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"slug": ["A template with this slug exists."]}


def test_bad_definition_is_400_pointing_at_the_step_and_field(staff_api):
    steps = [{"name": "first", "url": "https://api.example.com"}, {"name": "second", "url": "ftp://example.com"}]

    response = staff_api.post(URL, {**NEW_TEMPLATE, "definition": {"steps": steps}}, format="json")

    assert response.status_code == 400
    errors = response.json()["definition"]["steps"]
    assert errors[0] == {}
    assert errors[1] == {"url": ["The URL must start with http:// or https://."]}


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"name": "Bad Name", "url": "https://x.test"}, "name"),
        ({"name": "s", "url": "https://x.test", "auth": {"type": "magic"}}, "auth"),
        ({"name": "s", "url": "https://x.test/{{input.a | nope}}"}, "url"),
        ({"name": "s", "url": "https://x.test", "time_out": 5}, "time_out"),
        ({"name": "s", "url": "https://x.test", "body_type": "json", "body": None}, "body"),
    ],
    ids=["step-name", "auth-type", "unknown-filter", "unknown-key", "body-shape"],
)
def test_definition_errors_are_the_connector_validators(staff_api, step, field):
    response = staff_api.post(URL, {**NEW_TEMPLATE, "definition": {"steps": [step]}}, format="json")

    assert response.status_code == 400
    assert list(response.json()["definition"]["steps"][0]) == [field]


def test_reference_to_a_later_step_is_400(staff_api):
    steps = [
        {"name": "first", "url": "https://x.test/{{steps.second.id}}"},
        {"name": "second", "url": "https://x.test"},
    ]

    response = staff_api.post(URL, {**NEW_TEMPLATE, "definition": {"steps": steps}}, format="json")

    assert response.status_code == 400
    assert list(response.json()["definition"]["steps"][0]) == ["url"]


@pytest.mark.parametrize(
    ("required_credentials", "expected"),
    [
        ([{"service_name": "Bad Name", "fields": ["k"]}], {0: {"service_name"}}),
        ([{"service_name": "ok", "fields": []}], {0: {"fields"}}),
        ([{"service_name": "ok", "fields": ["a b"]}], {0: {"fields"}}),
        ([{"service_name": "ok", "fields": ["k"], "help": 5}], {0: {"help"}}),
        ([{"service_name": "ok", "fields": ["k"], "extra": 1}], {0: {"extra"}}),
    ],
    ids=["service-pattern", "no-fields", "field-name", "help-type", "unknown-key"],
)
def test_invalid_required_credentials_are_400(staff_api, required_credentials, expected):
    response = staff_api.post(URL, {**NEW_TEMPLATE, "required_credentials": required_credentials}, format="json")

    assert response.status_code == 400
    errors = response.json()["required_credentials"]
    assert {index: set(errors[index]) for index in expected} == expected


def test_duplicate_required_service_is_400(staff_api):
    item = {"service_name": "ok", "fields": ["k"]}

    response = staff_api.post(URL, {**NEW_TEMPLATE, "required_credentials": [item, item]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"required_credentials": [{}, {"service_name": ["This service is listed twice."]}]}


@pytest.mark.parametrize("tags", ["slack", [1], ["x" * 51], ["a", "a"], [""], [f"t{i}" for i in range(21)]])
def test_invalid_tags_are_400(staff_api, tags):
    response = staff_api.post(URL, {**NEW_TEMPLATE, "tags": tags}, format="json")

    assert response.status_code == 400
    assert "tags" in response.json()


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_members_cannot_write_templates(alice_api, make_template, method):
    template = make_template()
    url = URL if method == "post" else f"{URL}/{template.id}"

    response = getattr(alice_api, method)(url, NEW_TEMPLATE, format="json")

    assert response.status_code == 403
    assert ConnectorTemplate.objects.get().name == template.name


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_anonymous_cannot_write_templates(anon_api, make_template, method):
    template = make_template()
    url = URL if method == "post" else f"{URL}/{template.id}"

    assert getattr(anon_api, method)(url, NEW_TEMPLATE, format="json").status_code == 401


def test_put_is_not_offered(staff_api, make_template):
    template = make_template()

    assert staff_api.put(f"{URL}/{template.id}", NEW_TEMPLATE, format="json").status_code == 405


def test_patch_of_metadata_keeps_the_version(staff_api, make_template):
    template = make_template(name="Old")

    response = staff_api.patch(f"{URL}/{template.id}/", {"name": "New", "is_featured": True}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "New"
    assert response.json()["is_featured"] is True
    assert response.json()["version"] == 1


def test_patch_of_definition_bumps_the_version_and_normalizes(staff_api, make_template):
    template = make_template()
    new_definition = {"steps": [{"name": "fetch", "url": "https://api.example.com/v2/items"}]}

    response = staff_api.patch(f"{URL}/{template.id}", {"definition": new_definition}, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response.json()["definition"] == definition("https://api.example.com/v2/items")
    template.refresh_from_db()
    assert template.version == 2


def test_patch_with_the_same_definition_keeps_the_version(staff_api, make_template):
    template = make_template()
    same = {"steps": [{"name": "fetch", "url": "https://api.example.com/items"}]}

    response = staff_api.patch(f"{URL}/{template.id}", {"definition": same}, format="json")

    assert response.json()["version"] == 1


def test_patch_of_required_credentials_bumps_the_version(staff_api, make_template):
    template = make_template()
    required = [{"service_name": "acme-api", "fields": ["token"], "help": "Settings > API"}]

    response = staff_api.patch(f"{URL}/{template.id}", {"required_credentials": required}, format="json")

    assert response.json()["version"] == 2
    assert response.json()["required_credentials"] == required


def test_patch_with_bad_definition_is_400_and_changes_nothing(staff_api, make_template):
    template = make_template()
    bad = {"steps": [{"name": "fetch", "url": "https://x.test"}, {"name": "fetch", "url": "https://x.test"}]}

    response = staff_api.patch(f"{URL}/{template.id}", {"definition": bad}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "definition": {"steps": [{}, {"name": ["Step names must be unique within the connector."]}]}
    }
    template.refresh_from_db()
    assert template.definition == definition()


def test_patch_to_another_templates_slug_is_400(staff_api, make_template):
    make_template(slug="taken")
    template = make_template()

    response = staff_api.patch(f"{URL}/{template.id}", {"slug": "taken"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["slug"]


def test_staff_can_patch_a_private_template(staff_api, make_template):
    template = make_template(is_public=False)

    response = staff_api.patch(f"{URL}/{template.id}", {"is_public": True}, format="json")

    assert response.status_code == 200
    assert response.json()["is_public"] is True


def test_delete_keeps_installed_connectors_unlinked(staff_api, make_template, acme):
    template = make_template()
    connector = ConnectorFactory(workspace=acme, template=template, template_version=1)

    response = staff_api.delete(f"{URL}/{template.id}")

    assert response.status_code == 204
    assert not ConnectorTemplate.objects.exists()
    connector.refresh_from_db()
    assert connector.template is None
    assert Connector.objects.count() == 1


def test_schema_documents_the_marketplace(staff_api):
    response = staff_api.get("/api/schema/?format=json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    install = paths["/api/v1/connector-templates/{id}/install/"]["post"]
    assert "201" in install["responses"]
    assert "requestBody" in paths["/api/v1/connector-templates/{id}/rate/"]["post"]
