"""Writes of outbound webhooks: endpoints (one function per write) and the deliveries of finished executions."""

import json
import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from audit import services as audit
from connectors.models import Connector
from core.exceptions import InvalidInput
from credentials import signing_secrets
from executions.events import FinishedExecution
from webhooks import dispatch
from webhooks.models import EVENTS, TEST_EVENT, WebhookDelivery, WebhookEndpoint
from workspaces.models import Workspace


def _check(workspace: Workspace, data: dict[str, Any]) -> dict[str, Any]:
    if "connector" in data and data["connector"] is not None:
        connector = Connector.objects.filter(pk=data["connector"], workspace=workspace).first()
        if connector is None:
            raise InvalidInput("No such connector in this workspace.", field="connector")
        data = {**data, "connector": connector}
    return data


@transaction.atomic
def endpoint_create(*, workspace: Workspace, data: dict[str, Any]) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret in the clear (returned here only)."""
    data = _check(workspace, data)
    endpoint = WebhookEndpoint(workspace=workspace, **data)
    secret = signing_secrets.new_signing_secret()
    endpoint.secret = signing_secrets.seal(secret, owner_kind="webhook-endpoint", owner_id=endpoint.id)
    endpoint.save()
    audit.record(
        workspace_id=workspace.pk, action="webhook_endpoint.created", target=endpoint, target_type="webhook_endpoint"
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
    data = _check(endpoint.workspace, data)
    for name, value in data.items():
        setattr(endpoint, name, value)
    endpoint.save(update_fields=[*data, "updated_at"])
    audit.record(
        workspace_id=endpoint.workspace_id,
        action="webhook_endpoint.updated",
        target=endpoint,
        target_type="webhook_endpoint",
        details={"fields": sorted(data)},
    )
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    audit.record(
        workspace_id=endpoint.workspace_id,
        action="webhook_endpoint.deleted",
        target=endpoint,
        target_type="webhook_endpoint",
    )
    endpoint.delete()


@transaction.atomic
def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queues a `webhook.test` delivery to the endpoint (even an inactive one), signed like any other."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        workspace_id=endpoint.workspace_id,
        endpoint=endpoint,
        event=TEST_EVENT,
        message_id=_message_id(),
        body=encode({"type": TEST_EVENT, "timestamp": now.isoformat(), "data": {"endpoint": str(endpoint.id)}}),
        next_attempt_at=now,
    )
    transaction.on_commit(lambda: dispatch.enqueue(delivery.id))
    return delivery


def encode(payload: dict) -> str:
    return json.dumps(payload, cls=JSONEncoder, separators=(",", ":"), ensure_ascii=False)


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def deliveries_for_finished_execution(execution: FinishedExecution, status: str) -> None:
    """Subscriber of executions.events: in the finishing transaction, one pending delivery per matching
    active endpoint (one query when there is none), sent after commit."""
    event = f"execution.{status}"
    if event not in EVENTS:
        return
    matching = [pk for pk, events in _active_endpoints(execution) if event in json.loads(events)]
    if not matching:
        return
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            workspace_id=execution.workspace_id,
            endpoint_id=pk,
            event=event,
            execution_id=execution.id,
            message_id=_message_id(),
            next_attempt_at=now,
        )
        for pk in matching
    )
    ids = [delivery.id for delivery in deliveries]
    transaction.on_commit(lambda: _enqueue_all(ids))


# When `deliveries_for_finished_execution` may write, over an execution's row (executions.events.subscribe).
ENDPOINTS_EXIST_SQL = """
    EXISTS (SELECT 1 FROM webhooks_webhookendpoint endpoint
            WHERE endpoint.workspace_id = executions_execution.workspace_id AND endpoint.is_active
            AND (endpoint.connector_id IS NULL OR endpoint.connector_id = executions_execution.connector_id))
"""

_ACTIVE_ENDPOINTS_SQL = """
    SELECT id, events FROM webhooks_webhookendpoint
    WHERE workspace_id = %s AND is_active AND (connector_id IS NULL OR connector_id = %s)
"""


def _active_endpoints(execution: FinishedExecution) -> list[tuple[Any, str]]:
    """(id, events as JSON text) of the active endpoints for the execution's workspace and connector: plain SQL,
    as it runs at every finish and mostly finds nothing (the ORM built the query anew each time, most of the
    finish's CPU). Events are filtered by the caller rather than with a JSON operator, which SQLite (embedded
    mode) does not have; a workspace has few endpoints."""
    uuid_field = WebhookEndpoint._meta.pk
    params = [
        uuid_field.get_db_prep_value(value, connection) for value in (execution.workspace_id, execution.connector_id)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_ENDPOINTS_SQL, params)
        return cursor.fetchall()


def _enqueue_all(delivery_ids: list[uuid.UUID]) -> None:
    for delivery_id in delivery_ids:
        dispatch.enqueue(delivery_id)
