"""Fixtures of the security suite: workspace A (alice's Acme) holding one object of every kind, each marked with
strings that must never reach anyone outside Acme, and a clean throttle cache around every test."""

from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from connectors.models import Connector
from contacts.models import Contact
from credentials.models import Credential
from credentials.services import credential_upsert
from executions.models import ConnectorDailyStats, Execution, ExecutionStep
from templates_market.models import ConnectorTemplate
from tests.factories import ConnectorFactory, ContactFactory, MembershipFactory, UserFactory, simple_step
from workspaces.models import Role, User, Workspace

SECRET_VALUE = "sk_live_acme_9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def clean_throttles():
    """Throttle counters live in the cache: start and leave every test with none, so the many requests here
    neither trip over earlier tests' counts nor leave theirs to later tests."""
    cache.clear()
    yield
    cache.clear()


@dataclass
class TenantData:
    workspace: Workspace
    owner: User
    member: User
    connector: Connector
    contact: Contact
    execution: Execution
    credential: Credential
    template: ConnectorTemplate
    markers: list[str] = field(default_factory=list)
    # Ids of the integration objects (API key, trigger, webhook endpoint, delivery, batch) by matrix kind.
    integration_ids: dict[str, str] = field(default_factory=dict)

    def leaks_in(self, body: bytes | str, *, except_: str = "") -> list[str]:
        """The markers of this workspace found in `body`, ignoring those the caller itself sent in `except_`."""
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return [marker for marker in self.markers if marker in text and marker not in except_]


@pytest.fixture
def tenant_a(acme, alice, settings) -> TenantData:
    """Acme with one connector, contact, execution (with a step and daily stats), credential and extra member."""
    member = UserFactory(email="carol.acme-member@acme.test")
    MembershipFactory(user=member, workspace=acme, role=Role.MEMBER)
    connector = ConnectorFactory(
        workspace=acme,
        name="Acme-confidential-connector-51c2",
        description="acme-internal-description-8d1f",
        steps=[{**_normalized(simple_step(name="acmestep", url="https://acme-internal.example/api"))}],
    )
    contact = ContactFactory(workspace=acme, email="vip-contact-77a1@acme.test", first_name="Acmevera")
    execution = Execution.objects.create(
        workspace=acme,
        connector=connector,
        connector_version=1,
        definition=connector.definition,
        input={"phone": "acme-input-phone-4471"},
        output={"acmestep": {"carrier": "acme-output-carrier-90be"}},
        status="succeeded",
        contact=contact,
    )
    ExecutionStep.objects.create(
        execution=execution,
        index=0,
        name="acmestep",
        status="succeeded",
        request={"method": "GET", "url": "https://acme-internal.example/api", "headers": {}},
        response={"status_code": 200, "headers": {}, "body": "acme-response-body-c0ffee"},
        extracted={"carrier": "acme-output-carrier-90be"},
    )
    ConnectorDailyStats.objects.create(connector=connector, workspace=acme, date=timezone.now().date(), succeeded=1)
    credential, _ = credential_upsert(
        workspace=acme, service_name="acme-vault-service-3e9", fields={"api_key": SECRET_VALUE}
    )
    template = ConnectorTemplate.objects.create(
        name="Public template",
        slug="public-template-sec",
        is_public=True,
        definition={
            "input_schema": {},
            "max_duration_seconds": 300,
            "steps": [_normalized(simple_step())],
            "contact_mapping": {},
        },
    )
    markers = [
        str(acme.id),
        acme.name,
        str(connector.id),
        connector.name,
        connector.description,
        "acme-internal.example",
        str(contact.id),
        contact.email,
        contact.first_name,
        str(execution.id),
        "acme-input-phone-4471",
        "acme-output-carrier-90be",
        "acme-response-body-c0ffee",
        credential.service_name,
        SECRET_VALUE,
        alice.email,
        member.email,
    ]
    integration_ids, integration_markers = integration_objects(acme, connector, execution)
    markers += integration_markers
    return TenantData(
        acme, alice, member, connector, contact, execution, credential, template, markers, integration_ids
    )


def integration_objects(workspace, connector, execution) -> tuple[dict[str, str], list[str]]:
    """Acme's API key, trigger, webhook endpoint with a delivery, and batch: their ids and their markers."""
    from batches.models import Batch
    from triggers.services import trigger_create
    from webhooks.services import endpoint_create, endpoint_send_test
    from workspaces.api_keys import api_key_create

    api_key, plaintext = api_key_create(
        workspace=workspace, name="acme-key-name-6b2e", role="admin", expires_at=None, created_by=None
    )
    trigger, secret = trigger_create(
        connector=connector, data={"type": "webhook", "input": {"k": "acme-trigger-input-2f"}}
    )
    endpoint, endpoint_secret = endpoint_create(
        workspace=workspace, data={"url": "https://acme-receiver.example/hook", "events": ["execution.succeeded"]}
    )
    delivery = endpoint_send_test(endpoint=endpoint)
    batch = Batch.objects.create(workspace=workspace, connector=connector, count=1)
    ids = {
        "api_key": str(api_key.id),
        "trigger": str(trigger.id),
        "hook_token": "unknown-token-for-the-matrix",
        "webhook_endpoint": str(endpoint.id),
        "batch": str(batch.id),
    }
    markers = [str(api_key.id), api_key.name, plaintext, api_key.prefix]
    markers += [str(trigger.id), trigger.token, secret, "acme-trigger-input-2f"]
    markers += [str(endpoint.id), "acme-receiver.example", endpoint_secret, str(delivery.id), delivery.message_id]
    markers += [str(batch.id)]
    return ids, markers


def _normalized(step: dict) -> dict:
    from tests.factories import normalized_step

    return normalized_step(step)


@pytest.fixture
def rates(monkeypatch):
    """Small rates for the duration of a test (DRF reads them once, into the throttle classes)."""

    def set_rates(**overrides: str) -> None:
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **overrides})

    return set_rates
