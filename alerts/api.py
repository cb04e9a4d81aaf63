"""GET|PUT /api/v1/workspace/alerts: any member reads, an owner or admin replaces the settings."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from alerts import services
from alerts.models import DEFAULT_MIN_INTERVAL_MINUTES, AlertSettings
from workspaces.scoping import WorkspaceScopedViewSet

MAX_EMAILS = 20
MAX_INTERVAL_MINUTES = 7 * 24 * 60


class AlertSettingsSerializer(serializers.Serializer):
    emails = serializers.ListField(
        child=serializers.EmailField(max_length=254), max_length=MAX_EMAILS, default=list, required=False
    )
    on_failure = serializers.BooleanField(default=True, required=False)
    min_interval_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_INTERVAL_MINUTES, default=DEFAULT_MIN_INTERVAL_MINUTES, required=False
    )

    def validate_emails(self, emails: list[str]) -> list[str]:
        unique: list[str] = []
        for email in emails:
            normalized = email.strip().lower()
            if normalized not in unique:
                unique.append(normalized)
        return unique


@extend_schema(tags=["alerts"])
class AlertSettingsViewSet(WorkspaceScopedViewSet):
    serializer_class = AlertSettingsSerializer
    pagination_class = None
    manager_actions = frozenset({"update"})

    def get_unscoped_queryset(self):
        return AlertSettings.objects.all()

    def get_object(self) -> AlertSettings:
        """The workspace's settings, or the defaults (unsaved) when it has none yet."""
        return self.get_queryset().first() or AlertSettings(workspace=self.request.workspace)

    @extend_schema(summary="The workspace's failure alert settings", responses={200: AlertSettingsSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(AlertSettingsSerializer(self.get_object()).data)

    @extend_schema(
        summary="Replace the workspace's failure alert settings (owner or admin)",
        request=AlertSettingsSerializer,
        responses={200: AlertSettingsSerializer},
    )
    def update(self, request, *args, **kwargs):
        serializer = AlertSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = services.alert_settings_update(workspace=request.workspace, **serializer.validated_data)
        return Response(AlertSettingsSerializer(row).data)
