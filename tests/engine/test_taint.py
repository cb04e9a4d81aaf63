"""Secret taint through filter chains, scrubbing through re-encoding layers, and XML attribute escaping."""

from __future__ import annotations

import base64
import json
import logging
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote

import pytest

from connectors.engine.credentials import StaticCredentialProvider, WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import REDACTED, RedactingLogFilter, Redactor, redaction_scope
from connectors.engine.runner import Runner, render_contact_mapping
from connectors.engine.templating import compile_template
from tests.factories import normalized_step

SECRET = "Sk9 {Zq}|Xw%zz7Rm^Lp"
CHAINS = [
    "upper",
    "lower",
    "base64",
    "base64 | base64",
    "urlencode",
    "urlencode | urlencode",
    "lower | base64 | urlencode",
    "upper | base64 | base64 | base64",
    "json",
    "json | base64",
    'default:"x" | upper',
]


@pytest.fixture
def runner() -> Runner:
    return Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")))


def context_with_secret(redactor: Redactor) -> dict:
    provider = StaticCredentialProvider({"svc": {"key": SECRET}})
    return {"input": {"name": "Ada"}, "contact": {}, "workspace": WorkspaceNamespace(provider, redactor), "steps": {}}


@pytest.mark.parametrize("chain", CHAINS)
@pytest.mark.parametrize("where", ["url", "header", "query", "json", "form", "raw", "xml"])
def test_anything_rendered_from_a_secret_is_registered_as_one(runner, chain, where):
    template = f"{{{{workspace.svc.key | {chain}}}}}"
    step: dict = {"name": "s", "url": "https://api.example.com/x"}
    if where == "url":
        step["url"] = f"https://api.example.com/{template}"
    elif where == "header":
        step["headers"] = {"X-Thing": template}
    elif where == "query":
        step["query"] = {"thing": template}
    elif where in ("raw", "xml"):
        step.update(body_type=where, body=f"<a>{template}</a>")
    else:
        step.update(body_type=where, body={"thing": template})
    redactor = Redactor()

    request, _sensitive = runner.render_request(normalized_step(step), context_with_secret(redactor), redactor)

    rendered = compile_template(template).render(context_with_secret(Redactor()))
    assert redactor.scrub_text(rendered) == REDACTED
    sent = json.dumps([request.url, request.headers, request.params, (request.body or b"").decode()])
    scrubbed = redactor.scrub_message(sent)
    assert scrubbed != sent
    assert [form for form in (SECRET, rendered, json.dumps(rendered)[1:-1]) if form in scrubbed] == []


def test_values_not_derived_from_a_secret_are_not_registered(runner):
    redactor = Redactor()
    step = normalized_step({"name": "s", "url": "https://api.example.com/{{input.name | upper}}"})

    runner.render_request(step, context_with_secret(redactor), redactor)

    assert redactor.secret_count == 0


def test_a_value_that_contains_a_known_secret_is_tainted_too(runner):
    redactor = Redactor()
    redactor.add("tok-123456")
    context = {"input": {}, "contact": {}, "workspace": {}, "steps": {"login": {"echo": "got tok-123456 back"}}}
    step = normalized_step(
        {"name": "s", "url": "https://x.example/", "headers": {"X": "{{steps.login.echo | base64}}"}}
    )

    request, _ = runner.render_request(step, context, redactor)

    assert redactor.scrub_text(request.headers["X"]) == REDACTED


def test_contact_mapping_refuses_secret_derived_values_at_run_time():
    redactor = Redactor()
    context = context_with_secret(redactor)
    context["steps"] = {"echo": {"seen": f"you sent {SECRET}", "name": "Ada"}}
    mapping = {
        "first_name": "{{steps.echo.name}}",
        "last_name": "{{steps.echo.seen | lower}}",
        "custom_fields.k": "{{workspace.svc.key | base64}}",
    }
    redactor.add(SECRET)

    values, notes = render_contact_mapping(mapping, context, redactor)

    assert values == {"first_name": "Ada"}
    assert [note.split(":")[0] for note in notes] == [
        "contact_mapping 'last_name' skipped",
        "contact_mapping 'custom_fields.k' skipped",
    ]
    assert all("contacts never store secrets" in note for note in notes)


@pytest.mark.parametrize(
    "spelled",
    [
        quote(SECRET, safe=""),
        quote(SECRET, safe="{}|^ %"),
        quote(SECRET, safe="").lower(),
        SECRET.replace(" ", "%20").replace("|", "%7c"),
        SECRET.replace("%", "%25").replace("{", "%7B"),
    ],
)
def test_messages_are_scrubbed_through_percent_encoding_whatever_its_spelling(spelled):
    redactor = Redactor()
    redactor.add(SECRET)

    scrubbed = redactor.scrub_message(f"connection to http://h.example:80/a/{spelled}/b refused")

    assert scrubbed == f"connection to http://h.example:80/a/{REDACTED}/b refused"


def test_messages_keep_escapes_that_spell_no_secret():
    redactor = Redactor()
    redactor.add(SECRET)

    assert redactor.scrub_message("GET /a%20b%2Fc 100%") == "GET /a%20b%2Fc 100%"


def test_log_lines_are_scrubbed_through_percent_encoding(caplog):
    redactor = Redactor()
    redactor.add(SECRET)
    caplog.handler.addFilter(RedactingLogFilter())
    caplog.set_level(logging.INFO)

    with redaction_scope(redactor):
        logging.getLogger("tests.taint").info("fetched %s", f"/x/{quote(SECRET.lower(), safe='')}")

    assert caplog.records[-1].getMessage() == f"fetched /x/{REDACTED}"


@pytest.mark.parametrize("offset", range(6))
def test_binary_bodies_are_scrubbed_before_base64_at_every_offset(runner, local_server, offset):
    from tests.local_server import Reply

    body = b"\x01" * offset + SECRET.encode() + b"\xfe\xff"
    local_server.route("/bin", Reply(200, headers={"Content-Type": "application/octet-stream"}, body=body))
    redactor = Redactor()
    redactor.add(SECRET)
    step = normalized_step({"name": "s", "url": f"{local_server.url}/bin"})

    record, _ = runner._run_step(step, 0, {"input": {}, "steps": {}}, redactor, None, None)

    stored = record.response["body"]
    assert base64.b64decode(stored["base64"]) == b"\x01" * offset + REDACTED.encode() + b"\xfe\xff"
    assert stored["size"] == len(body)


@pytest.mark.parametrize(
    "value",
    ['" injected="1', "' injected='1", "\"'><x/><y a='", "a & b < c > d"],
)
@pytest.mark.parametrize("quote_char", ['"', "'"])
def test_xml_values_cannot_break_out_of_an_attribute(runner, value, quote_char):
    body = f"<user name={quote_char}{{{{input.v}}}}{quote_char}>{{{{input.v}}}}</user>"
    step = normalized_step({"name": "s", "url": "https://x.example/", "body_type": "xml", "body": body})
    redactor = Redactor()

    request, _ = runner.render_request(step, {"input": {"v": value}}, redactor)

    element = ElementTree.fromstring(request.body)
    assert element.attrib == {"name": value}
    assert element.text == value
    assert "&quot;" in request.body.decode() or "&apos;" in request.body.decode() or '"' not in value
