from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connectors.models import Connector
from connectors.validation import DefinitionSerializer, StringField


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
