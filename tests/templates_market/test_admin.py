"""The marketplace in the Django admin (the SaaS console)."""

import json

import pytest

from templates_market import services
from templates_market.models import ConnectorTemplate, TemplateRating
from tests.factories import UserFactory

from .conftest import definition

CHANGELIST = "/admin/templates_market/connectortemplate/"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def form_data(**overrides) -> dict:
    data = {
        "name": "Weather",
        "slug": "weather",
        "description": "",
        "category": "Data",
        "tags": json.dumps(["weather"]),
        "definition": json.dumps({"steps": [{"name": "fetch", "url": "https://api.weather.test/now"}]}),
        "required_credentials": json.dumps([]),
        "is_public": "on",
    }
    return {**data, **overrides}


def test_changelist_lists_and_searches_templates(admin_client, make_template):
    make_template(name="Slack message", slug="slack-message", category="Messaging")
    make_template(name="Stripe customer")

    response = admin_client.get(CHANGELIST, {"q": "slack"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_changelist_filters_on_flags(admin_client, make_template):
    make_template(is_official=True)
    make_template()

    response = admin_client.get(CHANGELIST, {"is_official__exact": "1"})

    assert response.context["cl"].result_count == 1


def test_feature_action(admin_client, make_template):
    template = make_template()

    admin_client.post(CHANGELIST, {"action": "feature", "_selected_action": [str(template.pk)]})

    template.refresh_from_db()
    assert template.is_featured is True
    assert template.version == 1


def test_mark_official_action(admin_client, make_template):
    template = make_template()

    admin_client.post(CHANGELIST, {"action": "mark_official", "_selected_action": [str(template.pk)]})

    template.refresh_from_db()
    assert template.is_official is True


def test_add_validates_and_normalizes_the_definition(admin_client, staff):
    response = admin_client.post(f"{CHANGELIST}add/", form_data())

    assert response.status_code == 302
    template = ConnectorTemplate.objects.get()
    assert template.definition == definition("https://api.weather.test/now")
    assert template.author == staff


def test_add_with_a_bad_definition_shows_the_step_and_field(admin_client):
    bad = json.dumps({"steps": [{"name": "fetch", "url": "ftp://x.test"}]})

    response = admin_client.post(f"{CHANGELIST}add/", form_data(definition=bad))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["definition"] == [
        "steps[0].url: The URL must start with http:// or https://."
    ]
    assert not ConnectorTemplate.objects.exists()


def test_change_of_definition_bumps_the_version(admin_client, make_template):
    template = make_template(name="Weather", slug="weather", category="Data", tags=["weather"])
    changed = json.dumps({"steps": [{"name": "fetch", "url": "https://api.weather.test/v2"}]})

    response = admin_client.post(f"{CHANGELIST}{template.pk}/change/", form_data(definition=changed))

    assert response.status_code == 302
    template.refresh_from_db()
    assert template.version == 2


def test_change_of_name_keeps_the_version(admin_client, make_template):
    template = make_template(name="Weather", slug="weather", definition=definition("https://api.weather.test/now"))

    admin_client.post(f"{CHANGELIST}{template.pk}/change/", form_data(name="Weather now"))

    template.refresh_from_db()
    assert (template.name, template.version) == ("Weather now", 1)


def test_deleting_a_rating_recomputes_the_summary(admin_client, make_template):
    template = make_template()
    users = [UserFactory() for _ in range(3)]
    for user, rating in zip(users, [1, 5, 5], strict=True):
        services.template_rate(template=template, user=user, rating=rating)
    abusive = TemplateRating.objects.get(rating=1)

    response = admin_client.post(f"/admin/templates_market/templaterating/{abusive.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.rating_average, template.rating_count) == (5.0, 2)


def test_ratings_changelist_loads(admin_client, make_template, alice):
    services.template_rate(template=make_template(), user=alice, rating=4)

    assert admin_client.get("/admin/templates_market/templaterating/").status_code == 200
