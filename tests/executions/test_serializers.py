"""The execution serializers build their fields once per class and render exactly what DRF renders."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from connectors.engine.runner import StepRecord
from executions import lifecycle, services
from executions.serializers import ExecutionSerializer, FieldsBuiltOnce
from tests.executions.helpers import make_connector

pytestmark = pytest.mark.django_db


def rendered_by_drf(execution) -> dict:
    """What a plain ModelSerializer with the same declaration renders (fields built for this instance)."""

    class Plain(serializers.ModelSerializer):
        connector = serializers.UUIDField(source="connector_id", read_only=True)
        workspace = serializers.UUIDField(source="workspace_id", read_only=True)
        contact = serializers.UUIDField(source="contact_id", read_only=True, allow_null=True)

        class Meta:
            model = ExecutionSerializer.Meta.model
            fields = [name for name in ExecutionSerializer.Meta.fields if name != "steps"]

    class PlainStep(serializers.ModelSerializer):
        class Meta:
            model = ExecutionSerializer().fields["steps"].child.Meta.model
            fields = ExecutionSerializer().fields["steps"].child.Meta.fields

    return {**Plain(execution).data, "steps": PlainStep(execution.step_records.all(), many=True).data}


def test_the_fields_are_built_once_and_render_as_drf_does(acme, local_server, monkeypatch):
    connector = make_connector(acme, [{"name": "one", "url": f"{local_server.url}/one"}])
    queued = services.execution_create(connector=connector, input={"n": 1}, enqueue=False)
    running = services.execution_create(connector=connector, input={"n": 2, "deep": [1, {"x": None}]}, enqueue=False)
    claimed = lifecycle.claim(running.id)
    record = StepRecord(index=0, name="one", status="failed", attempts=2, request={"method": "GET"}, error="HTTP 500")
    record.started_at = record.finished_at = timezone.now()
    record.duration_ms = 12
    lifecycle.checkpoint_step(claimed, record)
    lifecycle.finish(claimed, status="failed", output={}, error="step 'one' failed: HTTP 500", notes=["a note"])
    running.refresh_from_db()
    assert len(ExecutionSerializer(running).data["steps"]) == 1  # builds the fields of both classes
    builds = []
    original = serializers.ModelSerializer.get_fields
    monkeypatch.setattr(serializers.ModelSerializer, "get_fields", lambda self: builds.append(self) or original(self))

    for execution in (queued, running):
        execution.refresh_from_db()
        assert ExecutionSerializer(execution).data == rendered_by_drf(execution)

    assert [built for built in builds if isinstance(built, FieldsBuiltOnce)] == []
