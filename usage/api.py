"""GET /api/v1/workspace/usage (any member) and PATCH /api/v1/admin/workspaces/{id} (staff: the quota)."""

import uuid

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.response import Response

from usage import selectors, services
from usage.models import MonthlyUsage
from usage.months import month_of, parse_month
from workspaces.models import Workspace
from workspaces.scoping import WorkspaceScopedViewSet


class QuotaSerializer(serializers.Serializer):
    executions_per_month = serializers.IntegerField(allow_null=True)


class UsageSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    executions = serializers.IntegerField(help_text="Executions started in the month.")
    http_requests = serializers.IntegerField(help_text="HTTP requests sent by steps in the month.")
    quota = QuotaSerializer()
    remaining = serializers.IntegerField(allow_null=True, help_text="Executions left this month; null: no quota.")


@extend_schema(tags=["usage"])
class UsageViewSet(WorkspaceScopedViewSet):
    serializer_class = UsageSerializer
    pagination_class = None

    def get_unscoped_queryset(self):
        return MonthlyUsage.objects.all()

    @extend_schema(
        summary="The workspace's usage of a month and its quota",
        parameters=[OpenApiParameter("month", str, description="YYYY-MM (UTC); default: the current month")],
        responses={200: UsageSerializer},
    )
    def retrieve(self, request, *args, **kwargs):
        raw = request.query_params.get("month")
        try:
            month = parse_month(raw) if raw is not None else month_of()
        except ValueError as error:
            raise serializers.ValidationError({"month": [str(error)]}) from None
        return Response(UsageSerializer(selectors.usage_of(workspace_id=request.workspace.pk, month=month)).data)


class WorkspaceQuotaWriteSerializer(serializers.Serializer):
    executions_per_month = serializers.IntegerField(min_value=0, max_value=2_000_000_000, allow_null=True)

    def to_internal_value(self, data):
        value = data.get("executions_per_month") if isinstance(data, dict) else None
        if isinstance(value, bool | float):
            raise serializers.ValidationError({"executions_per_month": ["Must be an integer or null."]})
        return super().to_internal_value(data)


class AdminWorkspaceQuotaSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    executions_per_month = serializers.IntegerField(allow_null=True)
    usage = UsageSerializer()


@extend_schema(tags=["admin"])
class AdminWorkspaceDetailView(generics.GenericAPIView):
    """Staff only, like every /api/v1/admin/ view (401 without a token, 403 for non-staff)."""

    permission_classes = [permissions.IsAdminUser]
    serializer_class = WorkspaceQuotaWriteSerializer
    http_method_names = ["patch", "options"]

    @extend_schema(
        summary="Set a workspace's monthly execution quota (null: unlimited)",
        request=WorkspaceQuotaWriteSerializer,
        responses={200: AdminWorkspaceQuotaSerializer},
    )
    def patch(self, request, workspace_id):
        workspace = generics.get_object_or_404(Workspace.objects.all(), pk=_uuid_or_404(workspace_id))
        serializer = WorkspaceQuotaWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        quota = services.quota_set(workspace=workspace, **serializer.validated_data)
        body = {
            "id": workspace.pk,
            "name": workspace.name,
            "executions_per_month": quota.executions_per_month,
            "usage": selectors.usage_of(workspace_id=workspace.pk, month=month_of()),
        }
        return Response(AdminWorkspaceQuotaSerializer(body).data)


def _uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404 from None
