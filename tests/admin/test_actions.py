"""Admin actions do what they say: (de)activate connectors, re-run failed executions."""

from django.contrib.messages import get_messages
from django.urls import reverse

from connectors.models import Connector
from executions.models import Execution, Status
from tests.admin.builders import make_execution
from tests.factories import ContactFactory


def run_action(client, changelist: str, action: str, objects) -> list[str]:
    response = client.post(
        reverse(f"admin:{changelist}_changelist"),
        {"action": action, "_selected_action": [str(obj.pk) for obj in objects]},
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_deactivate_action_deactivates_the_selected_connectors_only(staff_client, acme_connector, globex_connector):
    messages = run_action(staff_client, "connectors_connector", "deactivate", [acme_connector])

    assert messages == ["Deactivated 1 connector(s)."]
    assert dict(Connector.objects.values_list("name", "is_active")) == {
        "Acme phone check": False,
        "Globex enrich": True,
    }


def test_activate_action_activates_and_counts_only_the_changed(staff_client, acme_connector, globex_connector):
    Connector.objects.filter(pk=acme_connector.pk).update(is_active=False)

    messages = run_action(staff_client, "connectors_connector", "activate", [acme_connector, globex_connector])

    assert messages == ["Activated 1 connector(s)."]
    assert set(Connector.objects.values_list("is_active", flat=True)) == {True}


def test_deactivating_keeps_the_connector_version(staff_client, acme_connector):
    run_action(staff_client, "connectors_connector", "deactivate", [acme_connector])

    acme_connector.refresh_from_db()
    assert (acme_connector.is_active, acme_connector.version) == (False, 1)


def enqueued_ids(monkeypatch) -> list[str]:
    """The execution ids the re-run hands to the workers (once its transaction commits)."""
    ids: list[str] = []
    monkeypatch.setattr("executions.dispatch.enqueue", lambda execution_id, **kwargs: ids.append(str(execution_id)))
    return ids


def test_rerun_queues_a_new_execution_with_the_same_input_and_contact(
    staff_client, acme_connector, django_capture_on_commit_callbacks, monkeypatch
):
    contact = ContactFactory(workspace=acme_connector.workspace)
    failed = make_execution(acme_connector, status=Status.FAILED, input={"phone": "+4930123"}, contact=contact)
    enqueued = enqueued_ids(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        messages = run_action(staff_client, "executions_execution", "rerun_failed", [failed])

    rerun = Execution.objects.exclude(pk=failed.pk).get()
    assert messages == ["Queued 1 new execution(s)."]
    assert enqueued == [str(rerun.pk)]
    assert (rerun.status, rerun.triggered_by, rerun.input, rerun.contact_id, rerun.connector_id) == (
        Status.QUEUED,
        "admin",
        {"phone": "+4930123"},
        contact.pk,
        acme_connector.pk,
    )
    assert rerun.definition == acme_connector.definition


def test_rerun_skips_executions_that_did_not_fail(
    staff_client, acme_connector, django_capture_on_commit_callbacks, monkeypatch
):
    failed = make_execution(acme_connector, status=Status.FAILED)
    succeeded = make_execution(acme_connector, status=Status.SUCCEEDED)
    running = make_execution(acme_connector, status=Status.RUNNING)
    enqueued = enqueued_ids(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        messages = run_action(staff_client, "executions_execution", "rerun_failed", [failed, succeeded, running])

    assert messages == ["Queued 1 new execution(s).", "Skipped: 2 did not fail."]
    assert len(enqueued) == 1
    assert Execution.objects.filter(triggered_by="admin").count() == 1


def test_rerun_skips_failed_executions_of_inactive_connectors(
    staff_client, acme_connector, django_capture_on_commit_callbacks
):
    failed = make_execution(acme_connector, status=Status.FAILED)
    Connector.objects.filter(pk=acme_connector.pk).update(is_active=False)

    with django_capture_on_commit_callbacks() as enqueued:
        messages = run_action(staff_client, "executions_execution", "rerun_failed", [failed])

    assert messages == ["Queued 0 new execution(s).", "Skipped: 1 connector is inactive."]
    assert enqueued == []
    assert Execution.objects.count() == 1


def test_rerun_skips_input_that_no_longer_matches_the_schema(staff_client, acme_connector):
    failed = make_execution(acme_connector, status=Status.FAILED, input={})
    Connector.objects.filter(pk=acme_connector.pk).update(
        input_schema={"type": "object", "required": ["phone"], "properties": {"phone": {"type": "string"}}}
    )

    messages = run_action(staff_client, "executions_execution", "rerun_failed", [failed])

    assert messages == ["Queued 0 new execution(s).", "Skipped: 1 input no longer matches the input schema."]
    assert Execution.objects.count() == 1


def test_rerun_of_every_failed_execution_across_pages(staff_client, acme_connector):
    for _ in range(3):
        make_execution(acme_connector, status=Status.FAILED)
    make_execution(acme_connector, status=Status.SUCCEEDED)

    response = staff_client.post(
        reverse("admin:executions_execution_changelist") + "?status__exact=failed",
        {"action": "rerun_failed", "select_across": "1", "_selected_action": ["x"]},
    )

    assert response.status_code == 302
    assert Execution.objects.filter(triggered_by="admin", status=Status.QUEUED).count() == 3
