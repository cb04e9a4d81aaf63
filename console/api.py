"""The SaaS admin API (docs/api.md §12): staff only; 401 without a valid token, 403 for non-staff.

Figures come from `console.selectors` and `workspaces.selectors`; the template flags are written by
`templates_market.services`.
"""

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from console import selectors
from executions.serializers import ExecutionSerializer
from templates_market.models import ConnectorTemplate
from templates_market.serializers import ConnectorTemplateSerializer
from templates_market.services import template_set_flags
from workspaces.selectors import workspaces_with_activity

MAX_RECENT = 200
DEFAULT_RECENT = 50


class StaffOnly:
    """Staff only; DRF answers 401 (not 403) when no valid token was given.

    A view's own docstring becomes its description in the OpenAPI document, so this mixin's says nothing there.
    """

    permission_classes = [permissions.IsAdminUser]


class ExecutionTotalsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    last_24h = serializers.IntegerField(help_text="Executions created in the last 24 hours.")


class PlatformStatsSerializer(serializers.Serializer):
    workspaces = serializers.IntegerField()
    users = serializers.IntegerField(help_text="Every account, staff included.")
    connectors = serializers.IntegerField()
    templates = serializers.IntegerField(help_text="Every template, public or not.")
    executions = ExecutionTotalsSerializer()


class WorkspaceActivitySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    members = serializers.IntegerField(source="member_count")
    connectors = serializers.IntegerField(source="connector_count")
    executions_30d = serializers.IntegerField(help_text="Executions created in the last 30 days.")
    failed_30d = serializers.IntegerField(help_text="Of those, the failed ones.")
    last_execution_at = serializers.DateTimeField(
        allow_null=True, help_text="Creation time of the workspace's newest execution."
    )


class RecentExecutionSerializer(ExecutionSerializer):
    """An execution as GET /api/v1/executions/{id} shows it, without `steps`, plus the names staff read."""

    connector_name = serializers.CharField(read_only=True)
    workspace_name = serializers.CharField(read_only=True)

    class Meta(ExecutionSerializer.Meta):
        fields = [name for name in ExecutionSerializer.Meta.fields if name != "steps"] + [
            "connector_name",
            "workspace_name",
        ]
        read_only_fields = fields


class RecentExecutionsPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Number of results (at most `limit`).")
    next = serializers.URLField(allow_null=True, help_text="Always null: the list is one page.")
    previous = serializers.URLField(allow_null=True, help_text="Always null: the list is one page.")
    results = RecentExecutionSerializer(many=True)


class TemplateFeatureSerializer(serializers.Serializer):
    is_featured = serializers.BooleanField()


class TemplateOfficialSerializer(serializers.Serializer):
    is_official = serializers.BooleanField()


class RecentExecutionsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_RECENT, default=DEFAULT_RECENT)


@extend_schema(tags=["admin"], responses=PlatformStatsSerializer, summary="Platform figures")
class StatsView(StaffOnly, APIView):
    """Platform totals: workspaces, users, connectors, templates and executions (all time and last 24 hours)."""

    def get(self, request):
        return Response(PlatformStatsSerializer(selectors.platform_stats()).data)


@extend_schema(tags=["admin"], summary="Workspaces with their activity")
class WorkspaceListView(StaffOnly, generics.ListAPIView):
    """Every workspace (ordered by name) with member and connector counts and its last 30 days of executions."""

    serializer_class = WorkspaceActivitySerializer

    def get_queryset(self):
        return workspaces_with_activity().order_by("name", "created_at", "id")


@extend_schema(
    tags=["admin"],
    summary="Newest executions of all workspaces",
    parameters=[
        OpenApiParameter(
            "limit", int, description=f"How many, 1 to {MAX_RECENT} (default {DEFAULT_RECENT}); newest first."
        )
    ],
    responses=RecentExecutionsPageSerializer,
)
class RecentExecutionsView(StaffOnly, APIView):
    """One page holding the newest `limit` executions, in the paginated envelope every list uses."""

    def get(self, request):
        query = RecentExecutionsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        executions = list(selectors.recent_executions(limit=query.validated_data["limit"]))
        return Response(
            {
                "count": len(executions),
                "next": None,
                "previous": None,
                "results": RecentExecutionSerializer(executions, many=True).data,
            }
        )


class TemplateFlagView(StaffOnly, APIView):
    """Sets one boolean flag of a template; answers with the whole template, as the marketplace shows it."""

    body_serializer: type[serializers.Serializer]
    http_method_names = ["patch", "options"]

    def patch(self, request, template_id: str):
        template = _template_or_404(template_id)
        body = self.body_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        template = template_set_flags(template=template, **body.validated_data)
        return Response(ConnectorTemplateSerializer(template).data)


TEMPLATE_ID = OpenApiParameter("template_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Template id")


def _template_or_404(template_id: str) -> ConnectorTemplate:
    try:
        return ConnectorTemplate.objects.get(pk=uuid.UUID(template_id))
    except (ValueError, ConnectorTemplate.DoesNotExist):
        raise exceptions.NotFound("No such template.") from None


@extend_schema(
    tags=["admin"],
    summary="Feature or unfeature a template",
    parameters=[TEMPLATE_ID],
    request=TemplateFeatureSerializer,
    responses=ConnectorTemplateSerializer,
)
class TemplateFeatureView(TemplateFlagView):
    body_serializer = TemplateFeatureSerializer


@extend_schema(
    tags=["admin"],
    summary="Mark or unmark a template as official",
    parameters=[TEMPLATE_ID],
    request=TemplateOfficialSerializer,
    responses=ConnectorTemplateSerializer,
)
class TemplateOfficialView(TemplateFlagView):
    body_serializer = TemplateOfficialSerializer
