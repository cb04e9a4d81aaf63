from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from connectors import services
from connectors.lifecycle_api import TEST_ACTIONS, ConnectorLifecycleMixin, actor
from connectors.models import Connector
from connectors.serializers import ConnectorSerializer
from core.throttling import ExecuteRateThrottle, TestRunThrottle
from executions import selectors as execution_selectors
from executions import services as execution_services
from executions import waiting
from executions.api import EXECUTION_FILTERS
from executions.models import Execution
from executions.serializers import ConnectorStatsSerializer, ExecuteRequestSerializer, ExecutionSerializer
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
            try:
                is_active = serializers.BooleanField().run_validation(params["is_active"])
            except serializers.ValidationError as error:
                raise serializers.ValidationError({"is_active": error.detail}) from None
            queryset = queryset.filter(is_active=is_active)
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
        data = request.data
        if kwargs.get("partial") and isinstance(data, dict):
            # PATCH replaces the fields it names and the result is validated as a whole definition, so nested
            # steps get their defaults and contact_mapping is checked against the steps it will run with.
            data = {**ConnectorSerializer(connector).data, **data}
        serializer = ConnectorSerializer(connector, data=data)
        serializer.is_valid(raise_exception=True)
        connector = services.connector_update(connector=connector, data=serializer.validated_data, user=actor(request))
        return Response(ConnectorSerializer(connector).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        return waiting.answer_after_wait(response)  # Prefer: wait, once the request's transaction committed

    def perform_destroy(self, instance):
        services.connector_delete(connector=instance)

    def get_throttles(self):
        if self.action == "execute":
            return [*super().get_throttles(), ExecuteRateThrottle()]
        if self.action in TEST_ACTIONS:
            return [*super().get_throttles(), TestRunThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=ExecuteRequestSerializer,
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter(
                "Prefer",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="wait=N (1 to 60): answer 200 with the execution if it ends within N seconds.",
            ),
        ],
        responses={202: ExecutionSerializer, 200: ExecutionSerializer},
    )
    @action(detail=True, methods=["post"])
    def execute(self, request, *args, **kwargs):
        """Queues an execution (202). Replaying an Idempotency-Key with the same body returns the first
        execution (200); with another body, 422."""
        serializer = ExecuteRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key is not None and len(key) > 255:
            raise serializers.ValidationError({"Idempotency-Key": ["At most 255 characters."]})
        execution, created = execution_services.execution_request(
            connector=self.get_object(),
            input=serializer.validated_data["input"],
            contact_id=serializer.validated_data.get("contact_id"),
            idempotency_key=key,
        )
        if created:
            execution = execution_selectors.without_steps_yet(execution)
        else:
            execution = execution_selectors.with_steps(Execution.objects.filter(pk=execution.pk)).get()
        response = Response(
            ExecutionSerializer(execution).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )
        waiting.remember(response, execution.pk, waiting.parse_prefer(request.headers.get("Prefer", "")))
        return response

    @extend_schema(
        parameters=[p for p in EXECUTION_FILTERS if p.name == "status"],
        responses={200: ExecutionSerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def executions(self, request, *args, **kwargs):
        connector = self.get_object()
        params = {"status": request.query_params.get("status")}
        queryset = execution_selectors.filter_executions(
            execution_selectors.with_steps(Execution.objects.filter(connector=connector)), params
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ExecutionSerializer(page, many=True).data)

    @extend_schema(responses={200: ConnectorStatsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request, *args, **kwargs):
        stats = execution_selectors.connector_stats(self.get_object())
        return Response(ConnectorStatsSerializer(stats).data)
