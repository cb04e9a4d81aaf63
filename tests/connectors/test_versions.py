"""Connector versions: every change that raises `version` is kept, with who made it; list, detail, restore."""

import threading

import pytest
from django.db import DataError, InternalError, ProgrammingError, connection, transaction

from connectors import services
from connectors.models import Connector, ConnectorVersion
from executions.models import Execution
from tests.conftest import client_for
from tests.factories import ConnectorFactory, MembershipFactory, UserFactory, normalized_step
from workspaces.models import Role

URL = "/api/v1/connectors"
STEP = {"name": "fetch", "url": "https://api.example.com/items"}
OTHER_STEP = {"name": "fetch", "url": "https://api.example.com/other", "method": "POST"}


def create(api, **fields) -> dict:
    response = api.post(URL, {"name": "Versioned", "steps": [STEP], **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def versions(api, connector_id) -> list[dict]:
    response = api.get(f"{URL}/{connector_id}/versions")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_new_connector_has_version_1_made_by_its_creator(alice_api, alice):
    connector = create(alice_api)

    listed = versions(alice_api, connector["id"])

    assert [(v["version"], v["created_by"]) for v in listed] == [(1, alice.email)]
    assert listed[0]["definition"] == {
        "input_schema": {},
        "max_duration_seconds": 300,
        "steps": [normalized_step(STEP)],
        "contact_mapping": {},
    }
    assert set(listed[0]) == {"version", "created_at", "created_by", "definition"}


def test_patch_put_and_restore_each_add_a_version_newest_first(alice_api, alice, acme):
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme, role=Role.MEMBER)
    connector = create(alice_api)
    url = f"{URL}/{connector['id']}"

    patched = alice_api.patch(url, {"steps": [OTHER_STEP]}, format="json")
    put = client_for(carol, acme).put(
        url, {"name": "Versioned", "steps": [STEP], "max_duration_seconds": 60}, format="json"
    )
    restored = alice_api.post(f"{url}/versions/2/restore")

    assert (patched.json()["version"], put.json()["version"], restored.status_code) == (2, 3, 200)
    assert restored.json()["version"] == 4
    assert restored.json()["steps"] == [normalized_step(OTHER_STEP)]
    assert restored.json()["max_duration_seconds"] == 300
    listed = versions(alice_api, connector["id"])
    assert [(v["version"], v["created_by"]) for v in listed] == [
        (4, alice.email),
        (3, carol.email),
        (2, alice.email),
        (1, alice.email),
    ]
    assert listed[0]["definition"] == listed[2]["definition"]
    assert listed[1]["definition"]["max_duration_seconds"] == 60


def test_history_is_kept_when_steps_change_but_not_when_only_the_name_changes(alice_api):
    connector = create(alice_api)
    url = f"{URL}/{connector['id']}"

    alice_api.patch(url, {"name": "Renamed", "description": "new words", "is_active": False}, format="json")
    assert [v["version"] for v in versions(alice_api, connector["id"])] == [1]

    alice_api.patch(url, {"steps": [OTHER_STEP]}, format="json")
    listed = versions(alice_api, connector["id"])
    assert [v["version"] for v in listed] == [2, 1]
    assert listed[1]["definition"]["steps"] == [normalized_step(STEP)]
    assert listed[0]["definition"]["steps"] == [normalized_step(OTHER_STEP)]


def test_an_invalid_update_adds_no_version(alice_api):
    connector = create(alice_api)

    response = alice_api.patch(f"{URL}/{connector['id']}", {"steps": [{"name": "Bad Name"}]}, format="json")

    assert response.status_code == 400
    assert [v["version"] for v in versions(alice_api, connector["id"])] == [1]


def test_version_detail(alice_api, alice):
    connector = create(alice_api)
    alice_api.patch(f"{URL}/{connector['id']}", {"steps": [OTHER_STEP]}, format="json")

    response = alice_api.get(f"{URL}/{connector['id']}/versions/1/")

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.json()["created_by"] == alice.email
    assert response.json()["definition"]["steps"] == [normalized_step(STEP)]


@pytest.mark.parametrize("number", ["3", "0", "999999999"])
def test_unknown_version_gets_404_for_detail_and_restore(alice_api, number):
    connector = create(alice_api)

    detail = alice_api.get(f"{URL}/{connector['id']}/versions/{number}")
    restore = alice_api.post(f"{URL}/{connector['id']}/versions/{number}/restore")

    assert (detail.status_code, restore.status_code) == (404, 404)
    assert restore.json()["detail"]
    assert Connector.objects.get(pk=connector["id"]).version == 1


def test_restoring_the_current_version_still_makes_a_new_one(alice_api):
    connector = create(alice_api)

    response = alice_api.post(f"{URL}/{connector['id']}/versions/1/restore/")

    assert response.json()["version"] == 2
    listed = versions(alice_api, connector["id"])
    assert listed[0]["definition"] == listed[1]["definition"]


def test_restore_keeps_name_description_active_flag_and_id(alice_api):
    connector = create(alice_api, description="first")
    url = f"{URL}/{connector['id']}"
    alice_api.patch(url, {"steps": [OTHER_STEP], "name": "Second", "is_active": False}, format="json")

    restored = alice_api.post(f"{url}/versions/1/restore").json()

    assert (restored["id"], restored["name"], restored["is_active"]) == (connector["id"], "Second", False)
    assert restored["steps"] == [normalized_step(STEP)]


def test_a_version_that_no_longer_validates_is_not_restored(alice_api, acme):
    connector = ConnectorFactory(workspace=acme)
    broken = {**connector.definition, "steps": [{**connector.steps[0], "name": "Not Valid"}]}
    ConnectorVersion.objects.filter(connector=connector).delete()
    ConnectorVersion.objects.create(connector=connector, workspace=acme, version=1, definition=broken)

    response = alice_api.post(f"{URL}/{connector.id}/versions/1/restore")

    assert response.status_code == 409
    assert response.json()["code"] == "version_invalid"
    connector.refresh_from_db()
    assert connector.version == 1


def test_the_list_is_paginated(alice_api):
    connector = create(alice_api)
    for seconds in range(2, 5):
        alice_api.patch(f"{URL}/{connector['id']}", {"max_duration_seconds": seconds}, format="json")

    page = alice_api.get(f"{URL}/{connector['id']}/versions", {"page_size": 2}).json()

    assert page["count"] == 4
    assert [v["version"] for v in page["results"]] == [4, 3]
    assert page["next"]


def test_listing_versions_costs_a_fixed_number_of_queries(alice_api, acme, django_assert_max_num_queries):
    connector = create(alice_api)
    for seconds in range(2, 12):
        alice_api.patch(f"{URL}/{connector['id']}", {"max_duration_seconds": seconds}, format="json")

    # session/auth, workspace, connector, count, page of versions with their authors, plus RLS statements
    with django_assert_max_num_queries(10):
        response = alice_api.get(f"{URL}/{connector['id']}/versions")

    assert len(response.json()["results"]) == 11


def test_a_connector_made_before_versions_were_kept_gets_its_old_version_recorded_on_change(acme, alice):
    connector = Connector.objects.create(workspace=acme, name="legacy", steps=[normalized_step(STEP)])

    services.connector_update(connector=connector, data={"steps": [normalized_step(OTHER_STEP)]}, user=alice)

    rows = list(ConnectorVersion.objects.filter(connector=connector).order_by("version"))
    assert [(row.version, row.created_by) for row in rows] == [(1, None), (2, alice)]
    assert rows[0].definition["steps"] == [normalized_step(STEP)]


def test_executions_keep_pointing_at_the_version_they_ran(alice_api, acme, monkeypatch):
    from executions import dispatch

    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)
    connector = create(alice_api)
    execution = alice_api.post(f"{URL}/{connector['id']}/execute", {"input": {}}, format="json").json()
    alice_api.patch(f"{URL}/{connector['id']}", {"steps": [OTHER_STEP]}, format="json")

    ran = alice_api.get(f"{URL}/{connector['id']}/versions/{execution['connector_version']}").json()

    assert execution["connector_version"] == 1
    assert ran["definition"] == Execution.objects.get(pk=execution["id"]).definition


def test_versions_are_append_only_in_the_database(acme):
    connector = ConnectorFactory(workspace=acme)
    version = ConnectorVersion.objects.get(connector=connector)

    with pytest.raises((InternalError, ProgrammingError, DataError)), transaction.atomic():
        ConnectorVersion.objects.filter(pk=version.pk).update(definition={"steps": []})

    version.refresh_from_db()
    assert version.definition == connector.definition


def test_deleting_the_author_keeps_the_version(alice_api, acme):
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme, role=Role.MEMBER)
    connector = create(client_for(carol, acme))

    carol.delete()

    assert [(v["version"], v["created_by"]) for v in versions(alice_api, connector["id"])] == [(1, None)]


def test_deleting_the_connector_deletes_its_versions(alice_api):
    connector = create(alice_api)

    alice_api.delete(f"{URL}/{connector['id']}")

    assert not ConnectorVersion.objects.filter(connector_id=connector["id"]).exists()


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_lifecycle_path_answers_with_and_without_a_trailing_slash(alice_api, acme, slash, monkeypatch):
    from executions import trial

    monkeypatch.setattr(trial, "run_test", lambda **kwargs: trial.TestRunResult("succeeded", {}, None, []))
    connector = create(alice_api)
    base = f"{URL}/{connector['id']}"
    document = alice_api.get(f"{base}/export{slash}").json()

    answers = {
        "versions": alice_api.get(f"{base}/versions{slash}").status_code,
        "version": alice_api.get(f"{base}/versions/1{slash}").status_code,
        "restore": alice_api.post(f"{base}/versions/1/restore{slash}").status_code,
        "test": alice_api.post(f"{base}/test{slash}", {}, format="json").status_code,
        "test definition": alice_api.post(
            f"{URL}/test{slash}", {"definition": {"steps": [STEP]}}, format="json"
        ).status_code,
        "update": alice_api.post(f"{base}/update-from-template{slash}").status_code,
        "import": alice_api.post(f"{URL}/import{slash}", document, format="json").status_code,
    }

    assert answers == {
        "versions": 200,
        "version": 200,
        "restore": 200,
        "test": 200,
        "test definition": 200,
        "update": 409,
        "import": 201,
    }


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_each_record_their_own_version_of_the_whole_definition():
    from tests.factories import WorkspaceFactory

    connector = ConnectorFactory(workspace=WorkspaceFactory())
    first_holds_the_row = threading.Event()
    second_started = threading.Event()

    def change_steps():
        try:
            with transaction.atomic():
                services.connector_update(connector=connector, data={"steps": [normalized_step(OTHER_STEP)]})
                first_holds_the_row.set()
                second_started.wait(5)
        finally:
            connection.close()

    def change_duration():
        try:
            first_holds_the_row.wait(5)
            second_started.set()
            services.connector_update(connector=connector, data={"max_duration_seconds": 42})
        finally:
            connection.close()

    threads = [threading.Thread(target=change_steps), threading.Thread(target=change_duration)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    rows = list(ConnectorVersion.objects.filter(connector=connector).order_by("version"))
    connector.refresh_from_db()
    assert [row.version for row in rows] == [1, 2, 3]
    assert rows[2].definition == connector.definition
    assert rows[2].definition["steps"] == [normalized_step(OTHER_STEP)]
    assert rows[2].definition["max_duration_seconds"] == 42
