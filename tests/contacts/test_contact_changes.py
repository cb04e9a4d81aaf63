"""The contact mapping diff: one function computes what a mapping would change (`contact_changes`, shown by test
runs) and applying is a separate step (`contact_apply_changes`, used by executions)."""

import pytest

from contacts.models import Contact
from contacts.services import contact_apply_changes, contact_apply_mapping, contact_changes
from executions.runtime import reset_runner
from tests.executions.helpers import json_reply, make_connector, run_api
from tests.factories import ContactFactory


@pytest.fixture
def contact(acme) -> Contact:
    return ContactFactory(
        workspace=acme,
        email="old@acme.test",
        phone="+1 555",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical",
        job_title="Engineer",
        phone_valid=False,
        custom_fields={"tier": "gold", "score": 3},
    )


@pytest.mark.parametrize(
    ("target", "value", "change"),
    [
        ("email", "new@acme.test", {"from": "old@acme.test", "to": "new@acme.test"}),
        ("phone", 33612345678, {"from": "+1 555", "to": "33612345678"}),
        ("first_name", "Grace", {"from": "Ada", "to": "Grace"}),
        ("last_name", None, {"from": "Lovelace", "to": ""}),
        ("company", "x" * 300, {"from": "Analytical", "to": "x" * 200}),
        ("job_title", ["a", 1], {"from": "Engineer", "to": "['a', 1]"}),
        ("phone_valid", True, {"from": False, "to": True}),
        ("phone_valid", " Yes ", {"from": False, "to": True}),
        ("phone_valid", None, {"from": False, "to": None}),
        ("phone_valid", 1, {"from": False, "to": True}),
        ("custom_fields.carrier", "Orange", {"from": None, "to": "Orange"}),
        ("custom_fields.carrier", None, {"from": None, "to": None}),
        ("custom_fields.tier", {"level": 2}, {"from": "gold", "to": {"level": 2}}),
    ],
)
def test_each_mapping_form_gives_its_change(contact, target, value, change):
    assert contact_changes(contact, {target: value}) == {target: change}


@pytest.mark.parametrize(
    ("target", "value"),
    [
        ("email", "old@acme.test"),
        ("phone_valid", "no"),
        ("phone_valid", 0),
        ("custom_fields.tier", "gold"),
        ("custom_fields.score", 3),
    ],
)
def test_a_value_equal_to_the_current_one_is_no_change(contact, target, value):
    assert contact_changes(contact, {target: value}) == {}


def test_computing_changes_writes_nothing(contact):
    updated_at = contact.updated_at

    contact_changes(contact, {"email": "x@y.test", "custom_fields.tier": "silver"})

    contact.refresh_from_db()
    assert (contact.email, contact.custom_fields["tier"], contact.updated_at) == ("old@acme.test", "gold", updated_at)


def test_applying_the_changes_gives_the_to_values_and_keeps_other_custom_fields(contact):
    values = {"company": "Babbage & Co", "phone_valid": "true", "custom_fields.carrier": "Orange"}
    changes = contact_changes(contact, values)

    contact_apply_changes(contact, changes)

    contact.refresh_from_db()
    assert contact.company == changes["company"]["to"] == "Babbage & Co"
    assert contact.phone_valid is True
    assert contact.custom_fields == {"tier": "gold", "score": 3, "carrier": "Orange"}


def test_applying_nothing_does_not_touch_the_row(contact):
    updated_at = contact.updated_at

    contact_apply_mapping(contact_id=contact.id, values={"email": "old@acme.test"})

    contact.refresh_from_db()
    assert contact.updated_at == updated_at


def test_an_execution_applies_exactly_what_a_test_run_showed(alice_api, acme, contact, local_server, settings):
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    local_server.route("/lookup", json_reply({"valid": "yes", "carrier": "Orange", "name": None}))
    mapping = {
        "phone_valid": "{{steps.lookup.valid}}",
        "custom_fields.carrier": "{{steps.lookup.carrier}}",
        "first_name": "{{steps.lookup.name}}",
        "company": "{{ input.company | upper }}",
        "job_title": "{{input.missing}}",
    }
    connector = make_connector(
        acme,
        [
            {
                "name": "lookup",
                "url": f"{local_server.url}/lookup",
                "extract": {"valid": "valid", "carrier": "carrier", "name": "name"},
            }
        ],
        contact_mapping=mapping,
    )
    body = {"input": {"company": "acme"}, "contact_id": str(contact.id)}

    shown = alice_api.post(f"/api/v1/connectors/{connector.id}/test", body, format="json").json()["contact_changes"]
    execution = run_api(alice_api, connector, body["input"], contact_id=contact.id)

    assert shown == {
        "phone_valid": {"from": False, "to": True},
        "custom_fields.carrier": {"from": None, "to": "Orange"},
        "first_name": {"from": "Ada", "to": ""},
        "company": {"from": "Analytical", "to": "ACME"},
    }
    assert execution["status"] == "succeeded"
    contact.refresh_from_db()
    after = {
        "phone_valid": contact.phone_valid,
        "custom_fields.carrier": contact.custom_fields.get("carrier"),
        "first_name": contact.first_name,
        "company": contact.company,
    }
    assert after == {target: change["to"] for target, change in shown.items()}
    assert contact.job_title == "Engineer"
    reset_runner()
