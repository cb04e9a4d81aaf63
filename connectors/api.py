from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from connectors import services
from connectors.models import Connector
from connectors.serializers import ConnectorSerializer
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
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    serializer_class = ConnectorSerializer

    def get_unscoped_queryset(self):
        queryset = Connector.objects.select_related("template")
        params = self.request.query_params
        search = params.get("search", "").strip()
        if search:
            queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
        if "is_active" in params:
            is_active = serializers.BooleanField().run_validation(params["is_active"])
            queryset = queryset.filter(is_active=is_active)
        return queryset

    def create(self, request, *args, **kwargs):
        serializer = ConnectorSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connector = services.connector_create(workspace=request.workspace, data=serializer.validated_data)
        return Response(ConnectorSerializer(connector).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        connector = self.get_object()
        data = request.data
        if kwargs.get("partial") and isinstance(data, dict):
            # PATCH replaces the fields it names and the result is validated as a whole definition, so nested
            # steps get their defaults and contact_mapping is checked against the steps it will run with.
            data = {**ConnectorSerializer(connector).data, **data}
        serializer = ConnectorSerializer(connector, data=data)
        serializer.is_valid(raise_exception=True)
        connector = services.connector_update(connector=connector, data=serializer.validated_data)
        return Response(ConnectorSerializer(connector).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)
