"""Saving a malformed definition (docs/api.md §5): 400 with the error at the step index and field, nothing saved."""

import pytest

from connectors.models import Connector

URL = "/api/v1/connectors"


def step(name="fetch", url="https://api.example.com/items", **fields) -> dict:
    return {"name": name, "url": url, **fields}


def at(body, path: tuple):
    for key in path:
        body = body[key]
    return body


# (id, definition fields besides "name", path of the error in the response body)
MALFORMED = [
    ("step-name-uppercase", {"steps": [step(name="Fetch")]}, ("steps", 0, "name")),
    ("step-name-starts-with-digit", {"steps": [step(name="1st")]}, ("steps", 0, "name")),
    ("step-name-with-space", {"steps": [step(), step(name="second step")]}, ("steps", 1, "name")),
    ("step-name-too-long", {"steps": [step(name="a" * 65)]}, ("steps", 0, "name")),
    ("duplicate-step-names", {"steps": [step(), step()]}, ("steps", 1, "name")),
    ("zero-steps", {"steps": []}, ("steps", "non_field_errors")),
    ("21-steps", {"steps": [step(name=f"s{i}") for i in range(21)]}, ("steps", "non_field_errors")),
    ("steps-missing", {}, ("steps",)),
    ("steps-not-a-list", {"steps": {"name": "fetch"}}, ("steps", "non_field_errors")),
    ("step-not-an-object", {"steps": [step(), "fetch"]}, ("steps", 1, "non_field_errors")),
    ("unknown-method", {"steps": [step(method="FETCH")]}, ("steps", 0, "method")),
    ("unknown-auth-type", {"steps": [step(auth={"type": "oauth"})]}, ("steps", 0, "auth", "type")),
    ("auth-not-an-object", {"steps": [step(auth="bearer")]}, ("steps", 0, "auth")),
    (
        "api-key-without-name",
        {"steps": [step(auth={"type": "api_key", "in": "header", "value": "k"})]},
        ("steps", 0, "auth", "name"),
    ),
    (
        "api-key-in-cookie",
        {"steps": [step(auth={"type": "api_key", "in": "cookie", "name": "k", "value": "v"})]},
        ("steps", 0, "auth", "in"),
    ),
    (
        "basic-without-password",
        {"steps": [step(auth={"type": "basic", "username": "u"})]},
        ("steps", 0, "auth", "password"),
    ),
    (
        "bearer-without-token",
        {"steps": [step(), step(name="b", auth={"type": "bearer"})]},
        ("steps", 1, "auth", "token"),
    ),
    (
        "unknown-field-in-auth",
        {"steps": [step(auth={"type": "bearer", "token": "t", "scheme": "Token"})]},
        ("steps", 0, "auth", "scheme"),
    ),
    (
        "auth-value-bad-template",
        {"steps": [step(auth={"type": "bearer", "token": "{{workspace.svc.key"})]},
        ("steps", 0, "auth", "token"),
    ),
    ("unknown-body-type", {"steps": [step(body_type="yaml", body="a: 1")]}, ("steps", 0, "body_type")),
    ("form-body-not-an-object", {"steps": [step(body_type="form", body=["a", "b"])]}, ("steps", 0, "body")),
    ("form-body-value-not-a-string", {"steps": [step(body_type="form", body={"n": 1})]}, ("steps", 0, "body")),
    ("xml-body-not-a-string", {"steps": [step(body_type="xml", body={"a": "b"})]}, ("steps", 0, "body")),
    ("raw-body-not-a-string", {"steps": [step(body_type="raw", body=42)]}, ("steps", 0, "body")),
    ("json-body-null", {"steps": [step(body_type="json", body=None)]}, ("steps", 0, "body")),
    ("body-with-body-type-none", {"steps": [step(body={"a": "b"})]}, ("steps", 0, "body")),
    (
        "json-body-bad-template",
        {"steps": [step(body_type="json", body={"a": ["{{input.x | nope}}"]})]},
        ("steps", 0, "body"),
    ),
    (
        "content-type-on-json-body",
        {"steps": [step(body_type="json", body={}, content_type="text/csv")]},
        ("steps", 0, "content_type"),
    ),
    ("literal-ftp-url", {"steps": [step(url="ftp://files.example.com/a.csv")]}, ("steps", 0, "url")),
    ("ftp-url-with-template", {"steps": [step(url="ftp://{{input.host}}/a.csv")]}, ("steps", 0, "url")),
    ("javascript-url", {"steps": [step(url="javascript:alert(1)")]}, ("steps", 0, "url")),
    ("url-without-scheme", {"steps": [step(url="api.example.com/items")]}, ("steps", 0, "url")),
    ("url-without-host", {"steps": [step(url="https:///items")]}, ("steps", 0, "url")),
    ("url-missing", {"steps": [{"name": "fetch"}]}, ("steps", 0, "url")),
    ("url-not-a-string", {"steps": [step(url=["https://x.example"])]}, ("steps", 0, "url")),
    ("unclosed-braces", {"steps": [step(url="https://api.example.com/{{input.id")]}, ("steps", 0, "url")),
    ("unknown-filter", {"steps": [step(query={"q": "{{input.q | reverse}}"})]}, ("steps", 0, "query", "q")),
    ("default-without-quotes", {"steps": [step(query={"q": "{{input.q | default:x}}"})]}, ("steps", 0, "query", "q")),
    ("unknown-namespace", {"steps": [step(url="https://api.example.com/{{env.HOME}}")]}, ("steps", 0, "url")),
    ("empty-expression", {"steps": [step(headers={"X-A": "{{ }}"})]}, ("steps", 0, "headers", "X-A")),
    (
        "reference-to-a-later-step",
        {"steps": [step(url="https://x.example/{{steps.second.id}}"), step(name="second")]},
        ("steps", 0, "url"),
    ),
    (
        "reference-to-an-unknown-step",
        {"steps": [step(), step(name="second", query={"id": "{{steps.nope.id}}"})]},
        ("steps", 1, "query"),
    ),
    ("reference-to-itself", {"steps": [step(url="https://x.example/{{steps.fetch.id}}")]}, ("steps", 0, "url")),
    (
        "step-reference-without-output",
        {"steps": [step(), step(name="b", url="https://x.example/{{steps.fetch}}")]},
        ("steps", 1, "url"),
    ),
    ("timeout-0", {"steps": [step(timeout_seconds=0)]}, ("steps", 0, "timeout_seconds")),
    ("timeout-121", {"steps": [step(timeout_seconds=121)]}, ("steps", 0, "timeout_seconds")),
    ("timeout-not-a-number", {"steps": [step(timeout_seconds="soon")]}, ("steps", 0, "timeout_seconds")),
    ("retry-11-attempts", {"steps": [step(retry={"max_attempts": 11})]}, ("steps", 0, "retry", "max_attempts")),
    ("retry-0-attempts", {"steps": [step(retry={"max_attempts": 0})]}, ("steps", 0, "retry", "max_attempts")),
    (
        "unknown-field-in-retry",
        {"steps": [step(retry={"max_attempts": 2, "backoff": 5})]},
        ("steps", 0, "retry", "backoff"),
    ),
    ("unknown-field-in-step", {"steps": [step(time_out=5)]}, ("steps", 0, "time_out")),
    ("unknown-response-type", {"steps": [step(response_type="xml")]}, ("steps", 0, "response_type")),
    ("extract-bad-path", {"steps": [step(extract={"first": "items["})]}, ("steps", 0, "extract", "first")),
    ("extract-bad-bracket", {"steps": [step(extract={"first": "items[x]"})]}, ("steps", 0, "extract", "first")),
    ("extract-empty-path", {"steps": [step(extract={"first": ""})]}, ("steps", 0, "extract", "first")),
    ("extract-path-a-number", {"steps": [step(extract={"v": 5})]}, ("steps", 0, "extract", "v")),
    ("extract-path-a-boolean", {"steps": [step(extract={"v": True})]}, ("steps", 0, "extract", "v")),
    ("extract-path-null", {"steps": [step(extract={"v": None})]}, ("steps", 0, "extract", "v")),
    ("extract-path-a-list", {"steps": [step(extract={"v": ["items"]})]}, ("steps", 0, "extract", "v")),
    ("query-value-a-number", {"steps": [step(query={"page": 2})]}, ("steps", 0, "query", "page")),
    ("query-value-null", {"steps": [step(query={"page": None})]}, ("steps", 0, "query", "page")),
    ("header-value-a-boolean", {"steps": [step(headers={"X-Debug": True})]}, ("steps", 0, "headers", "X-Debug")),
    (
        "bearer-token-a-number",
        {"steps": [step(auth={"type": "bearer", "token": 12345})]},
        ("steps", 0, "auth", "token"),
    ),
    (
        "api-key-name-a-number",
        {"steps": [step(auth={"type": "api_key", "in": "query", "name": 7, "value": "v"})]},
        ("steps", 0, "auth", "name"),
    ),
    (
        "basic-password-a-number",
        {"steps": [step(auth={"type": "basic", "username": "u", "password": 1234})]},
        ("steps", 0, "auth", "password"),
    ),
    (
        "content-type-a-number",
        {"steps": [step(body_type="raw", body="x", content_type=5)]},
        ("steps", 0, "content_type"),
    ),
    ("url-a-number", {"steps": [step(url=5)]}, ("steps", 0, "url")),
    ("mapping-value-a-number", {"steps": [step()], "contact_mapping": {"company": 5}}, ("contact_mapping", "company")),
    ("connector-name-a-number", {"steps": [step()], "name": 5}, ("name",)),
    ("description-a-number", {"steps": [step()], "description": 5}, ("description",)),
    ("header-name-with-space", {"steps": [step(headers={"X Token": "a"})]}, ("steps", 0, "headers")),
    ("header-value-not-a-string", {"steps": [step(headers={"X-Count": 3})]}, ("steps", 0, "headers", "X-Count")),
    ("query-not-an-object", {"steps": [step(query="a=b")]}, ("steps", 0, "query")),
    ("url-over-length-limit", {"steps": [step(url="https://x.example/" + "a" * 8200)]}, ("steps", 0, "url")),
    ("continue-on-error-not-a-bool", {"steps": [step(continue_on_error="maybe")]}, ("steps", 0, "continue_on_error")),
    ("input-schema-invalid", {"steps": [step()], "input_schema": {"type": "nope"}}, ("input_schema",)),
    ("input-schema-not-an-object", {"steps": [step()], "input_schema": ["string"]}, ("input_schema",)),
    ("max-duration-901", {"steps": [step()], "max_duration_seconds": 901}, ("max_duration_seconds",)),
    ("max-duration-0", {"steps": [step()], "max_duration_seconds": 0}, ("max_duration_seconds",)),
    (
        "mapping-to-unknown-field",
        {"steps": [step()], "contact_mapping": {"nickname": "{{input.n}}"}},
        ("contact_mapping", "nickname"),
    ),
    (
        "mapping-to-bad-custom-key",
        {"steps": [step()], "contact_mapping": {"custom_fields.a b": "x"}},
        ("contact_mapping", "custom_fields.a b"),
    ),
    (
        "mapping-value-not-a-string",
        {"steps": [step()], "contact_mapping": {"phone_valid": True}},
        ("contact_mapping", "phone_valid"),
    ),
    (
        "mapping-to-unknown-step",
        {"steps": [step()], "contact_mapping": {"company": "{{steps.lookup.company}}"}},
        ("contact_mapping", "company"),
    ),
    (
        "mapping-bad-template",
        {"steps": [step()], "contact_mapping": {"email": "{{input.email | lowercase}}"}},
        ("contact_mapping", "email"),
    ),
    ("mapping-not-an-object", {"steps": [step()], "contact_mapping": ["email"]}, ("contact_mapping",)),
    ("unknown-top-level-field", {"steps": [step()], "schedule": "daily"}, ("schedule",)),
    ("name-over-length-limit", {"steps": [step()], "name": "n" * 201}, ("name",)),
    ("description-over-length-limit", {"steps": [step()], "description": "d" * 5001}, ("description",)),
    ("is-active-not-a-bool", {"steps": [step()], "is_active": "sometimes"}, ("is_active",)),
]


@pytest.mark.parametrize(("fields", "path"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_malformed_definition_gets_400_at_the_offending_field_and_saves_nothing(alice_api, fields, path):
    response = alice_api.post(URL, {"name": "Broken", **fields}, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    messages = at(body, path)
    assert isinstance(messages, list)
    assert messages
    assert all(isinstance(message, str) and message for message in messages)
    assert list(body) == [path[0]]
    assert Connector.objects.count() == 0


def test_step_errors_leave_the_valid_steps_empty(alice_api):
    steps = [step(name="one"), step(name="two", url="ftp://x.example"), step(name="three")]

    response = alice_api.post(URL, {"name": "Broken", "steps": steps}, format="json")

    assert response.status_code == 400
    errors = response.json()["steps"]
    assert errors[0] == {}
    assert list(errors[1]) == ["url"]
    assert errors[2] == {}


def test_errors_in_several_steps_are_all_reported(alice_api):
    steps = [step(name="one", timeout_seconds=0), step(name="two"), step(name="Three")]

    response = alice_api.post(URL, {"name": "Broken", "steps": steps}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "steps": [
            {"timeout_seconds": ["Ensure this value is greater than or equal to 1."]},
            {},
            {"name": ["Use lowercase letters, digits and _, starting with a letter."]},
        ]
    }


def test_unknown_step_field_is_reported_with_the_other_errors_of_that_step(alice_api):
    response = alice_api.post(URL, {"name": "Broken", "steps": [step(method="FETCH", time_out=5)]}, format="json")

    assert response.status_code == 400
    assert set(response.json()["steps"][0]) == {"method", "time_out"}


def test_reference_error_names_the_expression(alice_api):
    steps = [step(), step(name="second", url="https://x.example/{{steps.nope.id}}")]

    response = alice_api.post(URL, {"name": "Broken", "steps": steps}, format="json")

    assert response.json()["steps"][1]["url"] == [
        "{{steps.nope.id}} refers to step 'nope', which is not defined before this step."
    ]


def test_a_number_where_a_string_belongs_is_refused_not_coerced(alice_api):
    response = alice_api.post(URL, {"name": "Broken", "steps": [step(extract={"v": 5, "ok": "a.b"})]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"steps": [{"extract": {"v": ["Must be a string."]}}]}


def test_malformed_patch_leaves_the_connector_unchanged(alice_api):
    created = alice_api.post(URL, {"name": "Lookup", "steps": [step()]}, format="json").json()

    response = alice_api.patch(
        f"{URL}/{created['id']}", {"name": "Renamed", "steps": [step(url="ftp://x.example")]}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["steps"][0]) == ["url"]
    connector = Connector.objects.get()
    assert connector.name == "Lookup"
    assert connector.steps[0]["url"] == "https://api.example.com/items"
    assert connector.version == 1


def test_malformed_put_leaves_the_connector_unchanged(alice_api):
    created = alice_api.post(URL, {"name": "Lookup", "steps": [step()]}, format="json").json()

    response = alice_api.put(f"{URL}/{created['id']}", {"name": "Renamed", "steps": []}, format="json")

    assert response.status_code == 400
    assert Connector.objects.get().name == "Lookup"


# --- valid edge cases ---

VALID = [
    ("templated-url", [step(url="{{input.base}}/x")]),
    ("templated-host", [step(url="https://{{input.host}}/x")]),
    ("uppercase-scheme", [step(url="HTTPS://api.example.com/x")]),
    ("lowercase-method", [step(method="post", body_type="json", body={"a": 1})]),
    ("default-filter-with-quotes", [step(query={"q": '{{ input.name | default:"n/a" | upper }}'})]),
    ("default-filter-with-braces-inside", [step(query={"q": '{{ input.name | default:"}}" }}'})]),
    ("default-filter-with-escaped-quote", [step(query={"q": '{{ input.name | default:"say \\"hi\\"" }}'})]),
    ("every-filter", [step(query={"q": "{{ input.q | lower | upper | urlencode | base64 | json }}"})]),
    ("hyphenated-segment", [step(headers={"X-Token": "{{workspace.my-svc.X-Token}}"})]),
    (
        "reference-to-an-earlier-step",
        [step(extract={"id": "items[0].id"}), step(name="second", url="https://x.example/{{steps.fetch.id}}")],
    ),
    (
        "reference-to-earlier-response",
        [step(), step(name="second", query={"s": "{{steps.fetch.response.status_code}}"})],
    ),
    (
        "all-auth-types",
        [
            step(name="a", auth={"type": "bearer", "token": "{{workspace.svc}}"}),
            step(name="b", auth={"type": "basic", "username": "u", "password": ""}),
            step(name="c", auth={"type": "api_key", "in": "header", "name": "X-Key", "value": "lit"}),
        ],
    ),
    ("json-body-of-any-shape", [step(method="POST", body_type="json", body=[1, "{{input.count}}", {"n": None}])]),
    ("form-body", [step(method="POST", body_type="form", body={"q": "{{input.q}}"})]),
    (
        "xml-body-with-content-type",
        [step(method="POST", body_type="xml", body="<a>{{input.a}}</a>", content_type="text/xml")],
    ),
    ("raw-body", [step(method="PUT", body_type="raw", body="plain {{input.a}}")]),
    (
        "extract-paths",
        [step(extract={"ids": "items[*].id", "last": "items[-1]", "mode": "headers.X-Mode", "n": "a.0.b"})],
    ),
    ("twenty-steps", [step(name=f"s{i}") for i in range(20)]),
    (
        "bounds",
        [
            step(timeout_seconds=1, retry={"max_attempts": 10}),
            step(name="b", timeout_seconds=120, retry={"max_attempts": 1}),
        ],
    ),
]


@pytest.mark.parametrize("steps", [case[1] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_edge_case_is_accepted(alice_api, steps):
    response = alice_api.post(URL, {"name": "Edge", "steps": steps}, format="json")

    assert response.status_code == 201, response.content
    assert Connector.objects.count() == 1


def test_method_is_stored_uppercase(alice_api):
    response = alice_api.post(URL, {"name": "Edge", "steps": [step(method="post")]}, format="json")

    assert response.json()["steps"][0]["method"] == "POST"


def test_connector_level_bounds_and_mappings_are_accepted(alice_api):
    body = {
        "name": "Edge",
        "steps": [step(extract={"carrier": "carrier"})],
        "max_duration_seconds": 900,
        "input_schema": {"type": "object", "required": ["phone"], "properties": {"phone": {"type": "string"}}},
        "contact_mapping": {
            "phone_valid": "{{steps.fetch.valid}}",
            "custom_fields.carrier": "{{steps.fetch.carrier}}",
            "email": "{{ contact.email | lower }}",
            "company": "Acme",
        },
    }

    response = alice_api.post(URL, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["contact_mapping"] == body["contact_mapping"]
    assert response.json()["max_duration_seconds"] == 900
