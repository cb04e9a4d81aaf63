"""A planted secret, transformed by filter chains and re-encoded by the layers a request goes through, is stored
nowhere in a plaintext-equivalent form: not in the API, the admin, contact rows, logs or a `pg_dump`.

The rule under test is structural (connectors/engine/taint.py): whatever is rendered from a secret is a secret.
"""

import base64
import html
import json
import logging
from urllib.parse import quote, quote_plus

import pytest
from django.test import Client
from django.urls import reverse

from connectors.engine.redaction import RedactingLogFilter
from contacts.models import Contact
from credentials.services import credential_upsert
from executions.models import Execution
from tests.executions.helpers import database_dump, execute, make_connector, run_api
from tests.factories import ContactFactory
from tests.local_server import Reply

# Characters a URL path percent-encodes (space, braces, bar, an invalid escape) and mixed case.
SECRET = "Sk9 {Zq}|Xw%zz7Rm^Lp"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def plaintext_equivalents() -> list[str]:
    """Forms from which the secret can be read back by anyone who sees them."""
    forms = {
        SECRET,
        SECRET.upper(),
        SECRET.lower(),
        b64(SECRET),
        b64(b64(SECRET)),
        b64(SECRET.lower()),
        quote(SECRET, safe=""),
        quote(quote(SECRET, safe=""), safe=""),
        quote_plus(SECRET),
        quote(SECRET.upper(), safe=""),
        quote(SECRET.upper(), safe="/"),
        SECRET.replace(" ", "%20"),
        SECRET.upper().replace(" ", "%20"),
    }
    return sorted(forms)


def leaks(text: str) -> list[str]:
    variants = {text, html.unescape(text)}
    return [form for form in plaintext_equivalents() if any(form in variant for variant in variants)]


@pytest.fixture
def planted(acme):
    credential_upsert(workspace=acme, service_name="svc", fields={"key": SECRET})


@pytest.fixture
def binary_server(local_server):
    for offset in range(3):
        body = b"\x00" * offset + SECRET.encode() + b"\xff"
        local_server.route(f"/bin{offset}", Reply(200, headers={"Content-Type": "application/octet-stream"}, body=body))
    return local_server


@pytest.fixture
def connector(acme, planted, httpbin, binary_server):
    key = "{{workspace.svc.key"
    steps = [
        {
            "name": "echo",
            "method": "POST",
            "url": f"{httpbin.url}/anything/{key} | upper}}}}",
            "headers": {
                "X-Up": f"{key} | upper}}}}",
                "X-Low": f"{key} | lower}}}}",
                "X-Twice": f"{key} | base64 | base64}}}}",
            },
            "query": {"q": f"{key} | urlencode | urlencode}}}}", "plain": "visible"},
            "body_type": "json",
            "body": {"a": f"{key} | lower | base64}}}}", "b": f"{key} | json}}}}", "c": f"{key}}}}}"},
            "extract": {"up": "headers.X-Up", "status": "url"},
        },
        *(
            {
                "name": f"bin{offset}",
                "url": f"{binary_server.url}/bin{offset}",
                "headers": {"X-Key": f"{key}}}}}"},
                "response_type": "binary",
            }
            for offset in range(3)
        ),
        {
            "name": "broken",
            "url": f"http://127.0.0.1:1/p/{key}}}}}/{key} | upper}}}}",
            "continue_on_error": True,
            "retry": {"max_attempts": 1},
        },
    ]
    return make_connector(
        acme,
        steps,
        contact_mapping={
            "first_name": "{{steps.echo.up | lower}}",
            "last_name": "{{steps.echo.response.status_code}}",
        },
    )


@pytest.fixture
def captured_logs(caplog):
    log_filter = RedactingLogFilter()
    caplog.handler.addFilter(log_filter)
    caplog.set_level(logging.DEBUG)
    yield caplog
    caplog.handler.removeFilter(log_filter)


@pytest.mark.django_db(transaction=True)
def test_a_transformed_secret_is_stored_nowhere(alice_api, acme, connector, staff, captured_logs):
    contact = ContactFactory(workspace=acme, first_name="Ada", last_name="L")

    execution = run_api(alice_api, connector, contact_id=contact.id)

    assert execution["status"] == "succeeded", execution
    echo, *bins, broken = execution["steps"]
    assert echo["status"] == "succeeded"
    assert execution["output"]["echo"]["up"] == "[REDACTED]"
    echoed_headers = echo["response"]["body"]["headers"]
    assert echoed_headers["X-Up"] == echoed_headers["X-Low"] == echoed_headers["X-Twice"] == "[REDACTED]"
    assert echo["response"]["body"]["args"] == {"q": "[REDACTED]", "plain": "visible"}
    assert echo["response"]["body"]["data"].count("[REDACTED]") == 3
    for offset, step in enumerate(bins):
        stored = base64.b64decode(step["response"]["body"]["base64"])
        assert stored == b"\x00" * offset + b"[REDACTED]\xff", offset
    assert broken["status"] == "failed"
    assert broken["error"].startswith("connection to http://127.0.0.1:1/p/")
    assert "[REDACTED]" in broken["error"]

    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("Ada", "200")
    assert any("contact_mapping 'first_name' skipped" in note for note in Execution.objects.get().notes)

    staff_client = Client()
    staff_client.force_login(staff)
    admin_page = staff_client.get(reverse("admin:executions_execution_change", args=[execution["id"]]))
    contact_page = staff_client.get(reverse("admin:contacts_contact_change", args=[contact.pk]))

    assert leaks(json.dumps(execution, ensure_ascii=False)) == []
    assert leaks(admin_page.content.decode()) == []
    assert leaks(contact_page.content.decode()) == []
    assert leaks(json.dumps(list(Contact.objects.values()), default=str)) == []
    assert leaks(captured_logs.text) == []
    assert leaks(database_dump()) == []


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"first_name": "{{workspace.svc.key}}"}, "is a credential"),
        ({"first_name": "{{workspace.svc.key | upper}}"}, "is a credential"),
        ({"custom_fields.k": "x-{{workspace.svc.key | base64 | base64}}"}, "is a credential"),
        ({"last_name": "{{steps.login.token | lower}}"}, "sent as auth by a later step"),
        ({"last_name": "{{steps.login.response.body}}"}, "sent as auth by a later step"),
    ],
)
def test_contact_mappings_of_secrets_are_refused_at_save_time(alice_api, mapping, message):
    body = {
        "name": "Mapping",
        "steps": [
            {"name": "login", "url": "https://api.example.com/login", "extract": {"token": "token"}},
            {
                "name": "use",
                "url": "https://api.example.com/use",
                "auth": {"type": "bearer", "token": "{{steps.login.response.body.token}}"},
            },
        ],
        "contact_mapping": mapping,
    }
    if "login.token" in json.dumps(mapping):
        body["steps"][1]["auth"]["token"] = "{{steps.login.token}}"

    response = alice_api.post("/api/v1/connectors", body, format="json")

    assert response.status_code == 400
    (target,) = mapping
    assert message in response.json()["contact_mapping"][target][0]


def test_a_contact_mapping_of_ordinary_outputs_is_accepted(alice_api):
    body = {
        "name": "Mapping",
        "steps": [{"name": "login", "url": "https://api.example.com/login", "extract": {"name": "name"}}],
        "contact_mapping": {"first_name": "{{steps.login.name | upper}}", "last_name": "{{input.last}}"},
    }

    assert alice_api.post("/api/v1/connectors", body, format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_failed_call_with_a_secret_in_the_url_path_stores_no_plaintext(alice_api, acme, planted):
    connector = make_connector(
        acme,
        [{"name": "broken", "url": "http://127.0.0.1:1/{{workspace.svc.key | lower}}/x", "retry": {"max_attempts": 1}}],
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["steps"][0]["error"] == "connection to http://127.0.0.1:1/[REDACTED]/x refused"
    assert leaks(json.dumps(execution)) == []


def test_execute_answers_carry_no_secret(alice_api, connector):
    assert leaks(execute(alice_api, connector).content.decode()) == []
