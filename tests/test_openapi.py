"""The served OpenAPI document is valid OpenAPI, and its descriptions describe.

Every check walks the whole document, so an endpoint or field added later is covered without touching this file.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

# Words that only make sense inside the code base (class names, section numbers and files of its docs); a reader
# of /api/docs/ has neither.
INTERNAL_WORDS = ("Serializer", "Mixin", "§", ".md")


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _nodes(value: Any, where: str = "#") -> Iterator[tuple[str, dict]]:
    """Every object of the document with its JSON pointer."""
    if isinstance(value, dict):
        yield where, value
        for key, child in value.items():
            yield from _nodes(child, f"{where}/{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _nodes(child, f"{where}/{index}")


def test_the_served_document_is_valid_openapi(document):
    validate(document)  # raises with the offending pointer when invalid

    assert document["openapi"].startswith("3.")


def test_no_description_merely_repeats_a_pattern(document):
    repeating = [
        where
        for where, node in _nodes(document)
        if isinstance(node.get("pattern"), str) and node["pattern"] in str(node.get("description", ""))
    ]

    assert repeating == []


def test_descriptions_name_nothing_internal_or_outside_the_repository(document):
    internal = [
        (where, node["description"])
        for where, node in _nodes(document)
        if isinstance(node.get("description"), str) and any(word in node["description"] for word in INTERNAL_WORDS)
    ]

    assert internal == []
