from typing import Any

from rest_framework import serializers

from executions.models import STEP_API_FIELDS, Execution, ExecutionStep

_FIELDS_BY_CLASS: dict[type, Any] = {}


# For output-only serializers: the fields are built once per class instead of once per instance. DRF builds a
# ModelSerializer's fields for every instance (copying the declared fields, mapping each model field), which
# cost more than rendering the execution itself: about a tenth of the execute call. These serializers only
# render, with fields whose output depends on the value alone, so one set serves all. (A comment, not a
# docstring: the OpenAPI document would show a docstring as the schemas' description.)
class FieldsBuiltOnce:
    @property
    def fields(self) -> Any:
        built = _FIELDS_BY_CLASS.get(type(self))
        if built is None:
            built = _FIELDS_BY_CLASS.setdefault(type(self), serializers.Serializer.fields.func(self))
        return built


class ExecutionStepSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = ExecutionStep
        fields = list(STEP_API_FIELDS)


class ExecutionSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    connector = serializers.UUIDField(source="connector_id", read_only=True)
    workspace = serializers.UUIDField(source="workspace_id", read_only=True)
    contact = serializers.UUIDField(source="contact_id", read_only=True, allow_null=True)
    steps = ExecutionStepSerializer(source="step_records", many=True, read_only=True)

    class Meta:
        model = Execution
        fields = [
            "id",
            "connector",
            "workspace",
            "connector_version",
            "status",
            "input",
            "output",
            "error",
            "notes",
            "contact",
            "attempts",
            "triggered_by",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "steps",
        ]
        read_only_fields = fields


class ExecuteRequestSerializer(serializers.Serializer):
    input = serializers.JSONField(default=dict)
    contact_id = serializers.UUIDField(required=False, allow_null=True)


class DailyStatsSerializer(serializers.Serializer):
    date = serializers.DateField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()


class StepStatsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    status_codes = serializers.DictField(child=serializers.IntegerField())
    retries = serializers.IntegerField()
    rate_limited = serializers.IntegerField(help_text="429 answers.")
    p50_ms = serializers.IntegerField(allow_null=True)
    p95_ms = serializers.IntegerField(allow_null=True)


class ConnectorStatsSerializer(serializers.Serializer):
    total_executions = serializers.IntegerField()
    successful_executions = serializers.IntegerField()
    failed_executions = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    avg_duration_ms = serializers.FloatField(allow_null=True)
    p95_duration_ms = serializers.IntegerField(allow_null=True)
    last_executed_at = serializers.DateTimeField(allow_null=True)
    daily = DailyStatsSerializer(many=True)
    steps = serializers.DictField(
        child=StepStatsSerializer(),
        help_text="Per step over the last 30 days: every request sent (attempts and pages), by status code.",
    )
