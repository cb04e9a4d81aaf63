from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connectors import portable
from connectors.definition_fields import StringField
from connectors.models import Connector
from connectors.validation import DefinitionSerializer
from credentials.names import SERVICE_NAME_RE as SERVICE_NAME
from executions.serializers import ExecutionStepSerializer


class ConnectorStatsSummarySerializer(serializers.Serializer):
    total_executions = serializers.IntegerField()
    successful_executions = serializers.IntegerField()
    failed_executions = serializers.IntegerField()
    last_executed_at = serializers.DateTimeField(allow_null=True)


class ConnectorSerializer(DefinitionSerializer):
    """A connector: its definition (steps, input schema, contact mapping, time limit) plus its identity, the
    template it was installed from and its execution totals."""

    id = serializers.UUIDField(read_only=True)
    workspace = serializers.UUIDField(source="workspace_id", read_only=True)
    name = StringField(max_length=200)
    description = StringField(max_length=5000, allow_blank=True, default="")
    is_active = serializers.BooleanField(default=True)
    template = serializers.UUIDField(source="template_id", read_only=True, allow_null=True)
    template_version = serializers.IntegerField(read_only=True, allow_null=True)
    template_update_available = serializers.SerializerMethodField()
    version = serializers.IntegerField(read_only=True)
    stats = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(serializers.BooleanField())
    def get_template_update_available(self, connector: Connector) -> bool:
        template = connector.template
        return bool(template and connector.template_version and template.version > connector.template_version)

    @extend_schema_field(ConnectorStatsSummarySerializer)
    def get_stats(self, connector: Connector) -> dict:
        return {
            "total_executions": connector.total_executions,
            "successful_executions": connector.successful_executions,
            "failed_executions": connector.failed_executions,
            "last_executed_at": serializers.DateTimeField().to_representation(connector.last_executed_at)
            if connector.last_executed_at
            else None,
        }


class DefinitionRepresentationSerializer(serializers.Serializer):
    input_schema = serializers.JSONField()
    max_duration_seconds = serializers.IntegerField()
    steps = serializers.JSONField()
    contact_mapping = serializers.JSONField()


class ConnectorVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    definition = DefinitionRepresentationSerializer()


class ConnectorWithMissingCredentialsSerializer(ConnectorSerializer):
    """A connector plus the services its definition needs that the workspace holds no credential for."""

    missing_credentials = serializers.ListField(child=serializers.CharField(), read_only=True)


class TestRequestSerializer(serializers.Serializer):
    input = serializers.JSONField(default=dict)
    contact_id = serializers.UUIDField(required=False, allow_null=True)


class DefinitionTestRequestSerializer(TestRequestSerializer):
    definition = serializers.JSONField(help_text="The connector fields, as for POST /api/v1/connectors.")


class ContactChangeSerializer(serializers.Serializer):
    """One contact field's change: its current value (`from`) and the value the mapping would write (`to`)."""

    def get_fields(self):  # `from` is a Python keyword, so it cannot be declared as a class attribute
        return {"from": serializers.JSONField(allow_null=True), "to": serializers.JSONField(allow_null=True)}


class TestRunSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    output = serializers.DictField()
    error = serializers.CharField(allow_null=True)
    steps = ExecutionStepSerializer(many=True)
    contact_changes = serializers.DictField(child=ContactChangeSerializer())
    notes = serializers.ListField(child=serializers.CharField())


class ExportedConnectorSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    input_schema = serializers.JSONField()
    max_duration_seconds = serializers.IntegerField()
    steps = serializers.JSONField()
    contact_mapping = serializers.JSONField()


class ExportDocumentSerializer(serializers.Serializer):
    """The portable document (`connector/v1`). As input it is checked strictly: another format, unknown
    fields, and above all fields that look like secrets, are refused; the connector is validated as a new
    one would be."""

    format = serializers.CharField()
    connector = ExportedConnectorSerializer()
    required_credentials = serializers.ListField(
        child=serializers.RegexField(SERVICE_NAME, max_length=64), max_length=100, default=list
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"detail": ["Send the exported document: a JSON object."]})
        errors = _extra_field_errors(data, portable.DOCUMENT_FIELDS)
        if isinstance(data.get("connector"), dict):
            connector_errors = _extra_field_errors(data["connector"], portable.CONNECTOR_FIELDS)
            if connector_errors:
                errors["connector"] = connector_errors
        if data.get("format") != portable.FORMAT:
            errors["format"] = [f"Unsupported format; this service imports {portable.FORMAT!r} documents."]
        value: dict = {"required_credentials": []}
        try:
            value["required_credentials"] = self.fields["required_credentials"].run_validation(
                data.get("required_credentials", [])
            )
        except serializers.ValidationError as error:
            errors["required_credentials"] = error.detail
        if "connector" not in data:
            errors["connector"] = ["This field is required."]
        elif "connector" not in errors:
            connector = ConnectorSerializer(data=data["connector"])
            if connector.is_valid():
                value["connector"] = connector.validated_data
            else:
                errors["connector"] = connector.errors
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def to_representation(self, instance):
        return instance


def _extra_field_errors(data: dict, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    errors = {}
    for key in sorted(set(data) - set(allowed), key=str):
        if portable.SECRET_LOOKING.search(str(key)):
            errors[str(key)] = [
                "Secrets are never imported: remove this field and store the value under /api/v1/workspace/credentials."
            ]
        else:
            errors[str(key)] = ["Unknown field."]
    return errors
