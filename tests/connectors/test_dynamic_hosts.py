"""Steps whose host the caller fills are allowed, and shown with a warning on the connector's admin page."""

import pytest
from django.test import Client
from django.urls import reverse

from connectors.dynamic_hosts import dynamic_hosts, host_expressions
from tests.factories import ConnectorFactory, normalized_step


@pytest.mark.parametrize(
    ("url", "expressions"),
    [
        ("https://api.example.com/{{input.id}}", []),
        ("https://api.example.com?q={{input.q}}", []),
        ("https://api.example.com#{{input.q}}", []),
        ("http://{{input.host}}/x", ["{{input.host}}"]),
        ("https://{{input.tenant}}.example.com/v1/{{input.id}}", ["{{input.tenant}}"]),
        ("https://api.example.com:{{input.port}}/x", ["{{input.port}}"]),
        (
            "https://user:{{workspace.svc.pw}}@{{contact.custom_fields.host}}/",
            ["{{workspace.svc.pw}}", "{{contact.custom_fields.host}}"],
        ),
        ("{{input.url}}", ["{{input.url}}"]),
        ("{{input.base}}/items/{{input.id}}", ["{{input.base}}", "{{input.id}}"]),
        ("https://{{input.host}}", ["{{input.host}}"]),
        ('https://{{input.host | default:"a/b"}}/x', ['{{input.host | default:"a/b"}}']),
    ],
)
def test_host_expressions_are_those_before_the_path(url, expressions):
    assert host_expressions(url) == expressions


def test_only_caller_chosen_namespaces_are_flagged():
    steps = [
        normalized_step({"name": "tenant", "url": "https://{{workspace.svc.subdomain}}.example.com/x"}),
        normalized_step(
            {
                "name": "caller",
                "url": "https://{{input.host}}/x",
                "auth": {"type": "bearer", "token": "{{workspace.svc.token}}"},
            }
        ),
        normalized_step({"name": "server", "url": "{{steps.caller.next}}"}),
    ]

    found = dynamic_hosts({"steps": steps})

    assert [(f.step, f.references, f.sends_auth) for f in found] == [
        ("caller", ("input.host",), True),
        ("server", ("steps.caller.next",), False),
    ]
    assert found[0].warning() == (
        "Step 'caller' takes its host from {{input.host}}: whoever fills it chooses where the request goes, and "
        "the step's auth and headers go there too."
    )


def test_dynamic_hosts_are_still_accepted_by_the_api(alice_api):
    body = {"name": "Dynamic", "steps": [{"name": "s", "url": "http://{{input.host}}/x"}]}

    assert alice_api.post("/api/v1/connectors", body, format="json").status_code == 201


def test_the_admin_page_warns_about_them(staff, acme):
    dynamic = ConnectorFactory(workspace=acme, steps=[normalized_step({"name": "s", "url": "http://{{input.host}}/x"})])
    static = ConnectorFactory(workspace=acme)
    client = Client()
    client.force_login(staff)

    warned = client.get(reverse("admin:connectors_connector_change", args=[dynamic.pk])).content.decode()
    quiet = client.get(reverse("admin:connectors_connector_change", args=[static.pk])).content.decode()

    assert "Step &#x27;s&#x27; takes its host from {{input.host}}" in warned
    assert "takes its host from" not in quiet
