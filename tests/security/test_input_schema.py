"""Untrusted `input_schema`: no reference leaves the schema, no pattern backtracks, no schema runs unbounded.

Each rule is tried with several variants, at save time (400 naming `input_schema`, nothing saved) and at execute
time for schemas stored before the rules existed (400, never a 500, and nothing fetched or read).
Wall-clock figures for the evil cases come from `bench/bench_input_schema.py`, not from timed asserts here.
"""

import pytest

from connectors.input_schema import SchemaRefused, check_input_schema, first_input_error, shared_budget
from connectors.models import Connector
from executions.models import Execution
from tests.executions.helpers import execute, make_connector

URL = "/api/v1/connectors"


def nested_any_of(levels: int) -> dict:
    """Each level is anyOf over two references to the level below: 2**levels subschemas for one value."""
    defs = {"l0": {"type": "string"}}
    for level in range(1, levels + 1):
        below = {"$ref": f"#/$defs/l{level - 1}"}
        defs[f"l{level}"] = {"anyOf": [below, {"allOf": [below]}]}
    return {"$defs": defs, "$ref": f"#/$defs/l{levels}"}


def deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def refused_schemas(local_url: str) -> list[tuple[str, dict, str]]:
    return [
        ("remote-http", {"$ref": f"{local_url}/schema.json"}, "local reference"),
        ("remote-http-nested", {"properties": {"a": {"$ref": f"{local_url}/s#/x"}}}, "/properties/a"),
        ("file-url", {"$ref": "file:///etc/passwd"}, "local reference"),
        ("relative-document", {"$ref": "other.json#/a"}, "local reference"),
        ("protocol-relative", {"$ref": "//127.0.0.1/x"}, "local reference"),
        ("urn", {"$ref": "urn:example:thing"}, "local reference"),
        ("in-defs", {"$defs": {"a": {"$ref": "https://example.com/a"}}}, "/$defs/a"),
        ("in-all-of", {"allOf": [{"$ref": "http://localhost/a"}]}, "/allOf/0"),
        ("nested-id", {"properties": {"a": {"$id": "http://127.0.0.1/", "$ref": "#/x"}}}, "$id"),
        ("dynamic-ref", {"$dynamicRef": "#meta"}, "$dynamicRef"),
        ("dangling-pointer", {"$ref": "#/$defs/missing"}, "points at nothing"),
        ("unknown-anchor", {"$ref": "#nowhere"}, "names no $anchor"),
        ("self-reference", {"$ref": "#"}, "refers back to itself"),
        ("self-reference-empty-pointer", {"$ref": "#/"}, "points at nothing"),
        (
            "loop-through-defs",
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
            "itself",
        ),
        ("loop-through-all-of", {"allOf": [{"$ref": "#"}]}, "itself"),
        ("loop-through-not", {"$defs": {"a": {"not": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"}, "itself"),
        ("loop-through-if", {"if": {"$ref": "#"}}, "itself"),
        ("loop-through-anchor", {"$defs": {"a": {"$anchor": "me", "anyOf": [{"$ref": "#me"}]}}}, "itself"),
        ("unused-loop", {"$defs": {"a": {"$ref": "#/$defs/a"}}, "type": "object"}, "itself"),
        ("nested-any-of", nested_any_of(16), "subschemas to one value"),
        ("fan-out", {"anyOf": [{"type": "string"}] * 65}, "65 branches"),
        ("backreference", {"pattern": "^(a)\\1$"}, "RE2"),
        ("lookahead", {"pattern": "^(?=a)a$"}, "RE2"),
        ("lookbehind-property", {"patternProperties": {"(?<=x)y": {}}}, "RE2"),
        ("pattern-in-property-names", {"propertyNames": {"pattern": "(?!a)"}}, "RE2"),
        ("too-large", {"description": "d" * 70_000}, "bytes as JSON"),
        ("too-deep", deep(20), "levels deep"),
        (
            "unevaluated-with-patterns",
            {"patternProperties": {"^x": {}}, "unevaluatedProperties": False},
            "unevaluatedProperties",
        ),
        ("not-json-schema", {"type": "nope"}, "Not a valid JSON Schema"),
    ]


@pytest.mark.parametrize("index", range(30))
def test_unsafe_schemas_are_refused_at_save_time_naming_the_field(alice_api, local_server, index):
    name, schema, expected = refused_schemas(local_server.url)[index]
    body = {"name": name, "input_schema": schema, "steps": [{"name": "s", "url": "https://api.example.com/"}]}

    response = alice_api.post(URL, body, format="json")

    assert response.status_code == 400, name
    assert list(response.json()) == ["input_schema"]
    assert expected in response.json()["input_schema"][0]
    assert Connector.objects.count() == 0
    assert local_server.requests == []


def test_the_refused_variants_are_all_listed():
    assert len(refused_schemas("http://127.0.0.1:1")) == 30


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}},
        {
            "$defs": {"phone": {"type": "string", "pattern": "^\\+[0-9]{6,15}$"}},
            "properties": {"p": {"$ref": "#/$defs/phone"}},
        },
        {"$defs": {"p": {"$anchor": "phone", "type": "string"}}, "properties": {"p": {"$ref": "#phone"}}},
        {"$id": "https://example.com/schemas/input", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {}}},
        {"properties": {"a/b": {"type": "string"}, "c": {"$ref": "#/properties/a~1b"}}},
        {"properties": {"$ref": {"type": "string"}}},
        {"pattern": "^(a+)+$"},
        {"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
        nested_any_of(8),
        deep(14),
    ],
)
def test_ordinary_schemas_are_accepted(schema):
    check_input_schema(schema)


def test_a_property_named_ref_is_data_not_a_reference():
    with pytest.raises(SchemaRefused):
        check_input_schema({"properties": {"a": {"$ref": "http://x/"}}})
    check_input_schema({"properties": {"$ref": {"const": "http://x/"}}, "default": {"$ref": "http://x/"}})


def stored_behind_validation(connector: Connector, schema: dict) -> Connector:
    """An input_schema saved before these rules existed."""
    Connector.objects.filter(pk=connector.pk).update(input_schema=schema)
    connector.refresh_from_db()
    return connector


@pytest.fixture
def connector(acme, local_server):
    return make_connector(acme, [{"name": "s", "url": f"{local_server.url}/run"}])


@pytest.mark.parametrize(
    "schema_of",
    [
        lambda url: {"$ref": f"{url}/schema.json"},
        lambda url: {"properties": {"a": {"$ref": f"{url}/schema.json#/x"}}},
        lambda url: {"$id": f"{url}/base/", "$ref": "other.json"},
        lambda url: {"$ref": "file:///etc/passwd"},
        lambda url: {"$ref": "file:///no/such/file.json"},
    ],
)
def test_a_stored_remote_reference_fetches_and_reads_nothing_at_execute_time(
    alice_api, connector, local_server, schema_of
):
    stored_behind_validation(connector, schema_of(local_server.url))

    response = execute(alice_api, connector, {"a": 1})

    assert response.status_code == 400
    assert "cannot be resolved" in response.json()["input"][0]
    assert "root:" not in response.content.decode()
    assert local_server.requests == []
    assert Execution.objects.count() == 0


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"allOf": [{"$ref": "#"}]},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
    ],
)
def test_a_stored_reference_loop_is_a_400_not_a_500(alice_api, connector, schema):
    stored_behind_validation(connector, schema)

    response = execute(alice_api, connector, {})

    assert response.status_code == 400
    assert list(response.json()) == ["input"]


def test_an_evil_pattern_is_matched_in_linear_time(alice_api, connector):
    stored_behind_validation(connector, {"properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}})

    assert execute(alice_api, connector, {"a": "a" * 40 + "!"}).json() == {
        "input": ["a: '" + "a" * 40 + "!' does not match '^(a+)+$'"]
    }
    assert execute(alice_api, connector, {"a": "a" * 40}).status_code == 202


@pytest.mark.parametrize(
    ("schema", "valid"),
    [
        ({"patternProperties": {"^(a+)+$": {"type": "integer"}}}, True),
        ({"patternProperties": {"^(a+)+$": {}}, "additionalProperties": False}, False),
        ({"propertyNames": {"pattern": "^(a+)+$"}}, False),
    ],
)
def test_evil_patterns_on_property_names_are_matched_by_re2(schema, valid):
    key = "a" * 40 + "!"
    assert (first_input_error(schema, {key: "x"}) is None) is valid


def test_a_stored_exponential_schema_stops_at_the_time_budget():
    schema = nested_any_of(24)
    # A budget of zero makes the outcome independent of the machine's speed.
    message = first_input_error(schema, 5, budget_seconds=0)

    assert message == "The input could not be checked against the connector's input_schema within 0 s."


def test_the_budget_is_per_call():
    assert first_input_error({"type": "integer"}, 5, budget_seconds=0) is not None
    assert first_input_error({"type": "integer"}, 5) is None


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 1.0], False),
        ([1, True], True),
        ([0, False, None, ""], True),
        ([{"a": 1, "b": [1]}, {"b": [1.0], "a": 1}], False),
        ([[1, 2], [2, 1]], True),
        ([{"a": 1}] + [{"a": i} for i in range(2, 20_000)], True),
    ],
)
def test_unique_items_follows_json_equality_in_linear_time(items, unique):
    assert (first_input_error({"uniqueItems": True}, items) is None) is unique


def test_input_errors_keep_their_messages(alice_api, connector):
    stored_behind_validation(connector, {"required": ["phone"], "properties": {"phone": {"type": "string"}}})

    assert execute(alice_api, connector, {}).json() == {"input": ["'phone' is a required property"]}
    assert execute(alice_api, connector, {"phone": 3}).json() == {"input": ["phone: 3 is not of type 'string'"]}


def test_a_shared_budget_bounds_many_validations_together():
    with shared_budget(0):
        assert first_input_error({"type": "integer"}, 5) == (
            "The inputs of this request could not all be checked against the input_schema in time."
        )
    assert first_input_error({"type": "integer"}, 5) is None


def test_a_batch_is_validated_within_one_budget_for_all_its_items(alice_api, connector, monkeypatch):
    from batches import services as batch_services

    monkeypatch.setattr(batch_services, "BATCH_VALIDATION_SECONDS", 0)
    stored_behind_validation(connector, {"type": "object"})
    items = [{"input": {"n": n}} for n in range(3)]

    response = alice_api.post(f"/api/v1/connectors/{connector.id}/execute-batch", {"items": items}, format="json")

    assert response.status_code == 400
    assert response.json()["items"][0] == {
        "input": ["The inputs of this request could not all be checked against the input_schema in time."]
    }
    assert Execution.objects.count() == 0
