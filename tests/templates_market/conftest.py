"""Fixtures for the marketplace tests: a template factory and a plain user with no workspace."""

import itertools

import pytest

from templates_market.models import ConnectorTemplate
from tests.factories import UserFactory, normalized_definition

TEMPLATE_KEYS = {
    "id",
    "name",
    "slug",
    "description",
    "category",
    "tags",
    "definition",
    "required_credentials",
    "is_public",
    "is_featured",
    "is_official",
    "install_count",
    "rating_average",
    "rating_count",
    "version",
    "created_at",
    "updated_at",
}


def definition(url: str = "https://api.example.com/items", **step) -> dict:
    """A valid, normalized one-step definition."""
    return normalized_definition({"steps": [{"name": "fetch", "url": url, **step}]})


@pytest.fixture
def make_template(db):
    """Creates a template row directly (stored as the API would store it)."""
    counter = itertools.count(1)

    def make(**fields) -> ConnectorTemplate:
        number = next(counter)
        fields.setdefault("name", f"Template {number}")
        fields.setdefault("slug", f"template-{number}")
        fields.setdefault("definition", definition())
        return ConnectorTemplate.objects.create(**fields)

    return make


@pytest.fixture
def loner(db):
    """A user who belongs to no workspace."""
    return UserFactory(email="loner@example.com")
