"""The connector endpoints (docs/api.md §5): list, create, read, replace, patch, delete, plus the lifecycle
routes of `ConnectorLifecycleMixin`. Execute, a connector's executions and its stats are execution endpoints:
`executions.connector_api`, registered under the same path."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from connectors import selectors, services
from connectors.lifecycle_api import TEST_ACTIONS, ConnectorLifecycleMixin, actor
from connectors.serializers import ConnectorSerializer
from core.patching import patched
from core.throttling import TestRunThrottle
from workspaces.scoping import WorkspaceScopedViewSet


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="Matches name or description"),
            OpenApiParameter("is_active", bool),
        ]
    )
)
@extend_schema(tags=["connectors"])
class ConnectorViewSet(
    ConnectorLifecycleMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    WorkspaceScopedViewSet,
):
    serializer_class = ConnectorSerializer

    def get_unscoped_queryset(self):
        queryset = selectors.connectors()
        if self.action == "list":
            queryset = selectors.filter_connectors(queryset, self.request.query_params)
        return queryset

    def create(self, request, *args, **kwargs):
        serializer = ConnectorSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connector = services.connector_create(
            workspace=request.workspace, data=serializer.validated_data, created_by=actor(request)
        )
        return Response(ConnectorSerializer(connector).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        connector = self.get_object()
        data = patched(ConnectorSerializer(connector).data, request.data) if kwargs.get("partial") else request.data
        serializer = ConnectorSerializer(connector, data=data)
        serializer.is_valid(raise_exception=True)
        connector = services.connector_update(connector=connector, data=serializer.validated_data, user=actor(request))
        return Response(ConnectorSerializer(connector).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.connector_delete(connector=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_throttles(self):
        if self.action in TEST_ACTIONS:
            return [*super().get_throttles(), TestRunThrottle()]
        return super().get_throttles()
