"""GET /api/v1/workspace/audit-log: the workspace's audit entries, newest first (owner or admin)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from audit.models import AuditEntry
from audit.services import ACTIONS
from workspaces.scoping import WorkspaceScopedViewSet


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "actor", "action", "target_type", "target_id", "details", "created_at", "ip"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(
        summary="The workspace's audit log, newest first",
        parameters=[
            OpenApiParameter("action", str, enum=sorted(ACTIONS), description="Only entries of this action"),
            OpenApiParameter("target_type", str, description="Only entries about this kind of object"),
        ],
    )
)
@extend_schema(tags=["audit"])
class AuditLogViewSet(mixins.ListModelMixin, WorkspaceScopedViewSet):
    serializer_class = AuditEntrySerializer
    manager_actions = frozenset({"list"})

    def get_unscoped_queryset(self):
        queryset = AuditEntry.objects.order_by("-created_at", "-id")
        action = self.request.query_params.get("action")
        if action:
            if action not in ACTIONS:
                raise serializers.ValidationError({"action": [f"Use one of {', '.join(sorted(ACTIONS))}."]})
            queryset = queryset.filter(action=action)
        target_type = self.request.query_params.get("target_type")
        if target_type:
            queryset = queryset.filter(target_type=target_type)
        return queryset
