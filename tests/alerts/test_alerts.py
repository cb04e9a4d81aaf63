"""Failure alerts: settings through the API, and one email per interval for a burst of failures, delivered to
a real local SMTP server (aiosmtpd)."""

import socket
import threading
import time
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from alerts.models import AlertSettings
from alerts.services import alert_settings_update, deliver_failure_digest
from executions.models import Execution, Status
from tests.executions.helpers import execute, make_connector
from tests.factories import MembershipFactory, UserFactory
from tests.local_server import Reply
from workspaces.models import Role

URL = "/api/v1/workspace/alerts"


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd checks the one it is given by connecting to it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.DEFAULT_FROM_EMAIL = "alerts@connectors.test"
    yield inbox
    controller.stop()


def wait_until(condition, what: str, timeout: float = 30.0):
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_defaults_before_anything_is_set(alice_api):
    response = alice_api.get(URL)

    assert response.status_code == 200
    assert response.json() == {"emails": [], "on_failure": True, "min_interval_minutes": 60}


def test_owners_set_the_alerts_and_members_read_them(alice_api, acme):
    body = {"emails": ["Ops@Acme.test", "ops@acme.test", "cto@acme.test"], "on_failure": True}

    response = alice_api.put(URL, body, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "emails": ["ops@acme.test", "cto@acme.test"],
        "on_failure": True,
        "min_interval_minutes": 60,
    }
    member = UserFactory(email="mel@acme.test")
    MembershipFactory(user=member, workspace=acme, role=Role.MEMBER)
    from tests.conftest import client_for

    api = client_for(member, acme)
    assert api.get(URL).json()["emails"] == ["ops@acme.test", "cto@acme.test"]
    assert api.put(URL, {"emails": []}, format="json").status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"emails": ["not-an-email"]},
        {"emails": "ops@acme.test"},
        {"emails": ["ops@acme.test"], "min_interval_minutes": 0},
        {"emails": ["ops@acme.test"], "min_interval_minutes": "often"},
        {"emails": ["ops@acme.test"], "on_failure": "perhaps"},
        {"emails": [f"u{n}@acme.test" for n in range(21)]},
    ],
)
def test_invalid_settings_are_400_and_change_nothing(alice_api, acme, body):
    response = alice_api.put(URL, body, format="json")

    assert response.status_code == 400
    assert not AlertSettings.objects.filter(workspace=acme).exists()


def test_without_addresses_or_with_alerts_off_nothing_is_sent(acme, smtp):
    alert_settings_update(workspace=acme, emails=[], on_failure=True, min_interval_minutes=60)

    assert deliver_failure_digest(workspace_id=acme.id) is False
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_failures_sends_exactly_one_email(alice, alice_api, acme, local_server, smtp):
    local_server.route("/down", Reply(404))
    connector = make_connector(acme, [{"name": "fetch", "url": f"{local_server.url}/down"}], name="Order sync")
    alert_settings_update(workspace=acme, emails=["ops@acme.test"], on_failure=True, min_interval_minutes=60)

    # Embedded mode: each execution runs in a background thread once its request commits, and its failure
    # enqueues the digest check after the failure commits.
    ids = [execute(alice_api, connector).json()["id"] for _ in range(6)]
    wait_until(
        lambda: Execution.objects.filter(pk__in=ids, status=Status.FAILED).count() == 6, "the executions to fail"
    )
    wait_until(lambda: smtp.messages, "the alert email")
    # More checks, concurrently, as several workers would run them: the interval has not passed.
    results = []

    def check() -> None:
        try:
            results.append(deliver_failure_digest(workspace_id=acme.id))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [False] * 4
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["ops@acme.test"]
    assert message["From"] == "alerts@connectors.test"
    assert "failed execution(s) in Acme" in message["Subject"]
    body = message.get_payload()
    assert "Order sync" in body
    assert "404" in body


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_of_a_due_digest_send_once(acme, smtp):
    connector = make_connector(acme, [{"name": "fetch", "url": "https://api.example.com/x"}], name="CRM push")
    alert_settings_update(workspace=acme, emails=["ops@acme.test"], on_failure=True, min_interval_minutes=5)
    from django.utils import timezone

    Execution.objects.create(
        workspace=acme,
        connector=connector,
        connector_version=1,
        definition=connector.definition,
        status=Status.FAILED,
        error="HTTP 500 from api.example.com",
        finished_at=timezone.now(),
    )
    barrier = threading.Barrier(6)
    results = []

    def check() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(deliver_failure_digest(workspace_id=acme.id))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False] * 5 + [True]
    assert len(smtp.messages) == 1
    assert "CRM push: 1 failure(s); latest error: HTTP 500 from api.example.com" in smtp.messages[0][1].get_payload()


def test_after_the_interval_only_new_failures_are_reported(acme, smtp):
    from datetime import timedelta

    from django.utils import timezone

    connector = make_connector(acme, [{"name": "fetch", "url": "https://api.example.com/x"}], name="Billing")
    alert_settings_update(workspace=acme, emails=["ops@acme.test"], on_failure=True, min_interval_minutes=10)
    start = timezone.now()

    def fail(at) -> None:
        Execution.objects.create(
            workspace=acme,
            connector=connector,
            connector_version=1,
            definition=connector.definition,
            status=Status.FAILED,
            error="boom",
            finished_at=at,
        )

    fail(start + timedelta(seconds=1))
    assert deliver_failure_digest(workspace_id=acme.id, now=start + timedelta(seconds=2)) is True
    fail(start + timedelta(minutes=3))
    assert deliver_failure_digest(workspace_id=acme.id, now=start + timedelta(minutes=4)) is False  # too soon
    assert deliver_failure_digest(workspace_id=acme.id, now=start + timedelta(minutes=11)) is True
    assert deliver_failure_digest(workspace_id=acme.id, now=start + timedelta(minutes=30)) is False  # nothing new

    assert [m.get_payload().splitlines()[0] for _, m in smtp.messages] == [
        "1 execution(s) failed in workspace Acme since the last alert.",
        "1 execution(s) failed in workspace Acme since the last alert.",
    ]
