"""A connector's execution endpoints (docs/api.md §7): execute, its executions, its stats.

They live under the connector's path (`/api/v1/connectors/{id}/...`) but belong to this app: the viewset is
registered by `executions.urls` under the `connectors` prefix, next to the connector's own routes. The object
at the path is the connector, scoped to the request's workspace by `WorkspaceScopedViewSet` like any other.
`Prefer: wait` (executions.waiting) and the monthly quota (usage, through `execution_request`) apply here.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from connectors import selectors as connector_selectors
from connectors.models import Connector
from core.throttling import ExecuteRateThrottle
from executions import selectors, services, waiting
from executions.api import EXECUTION_FILTERS
from executions.models import Execution
from executions.serializers import ConnectorStatsSerializer, ExecuteRequestSerializer, ExecutionSerializer
from usage.services import quota_refusals
from workspaces.scoping import WorkspaceScopedViewSet

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@extend_schema(tags=["connectors"])
class ConnectorExecutionViewSet(WorkspaceScopedViewSet):
    """POST execute, GET executions and GET stats of one connector; no routes of its own besides these."""

    serializer_class = ExecutionSerializer

    def get_unscoped_queryset(self):
        return connector_selectors.connectors()

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        return waiting.answer_after_wait(response)  # Prefer: wait, once the request's transaction committed

    def get_throttles(self):
        if self.action == "execute":
            return [*super().get_throttles(), ExecuteRateThrottle()]
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
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise serializers.ValidationError(
                {"Idempotency-Key": [f"At most {MAX_IDEMPOTENCY_KEY_LENGTH} characters."]}
            )
        execution, created = services.execution_request(
            connector=self.get_scoped_object(Connector),
            input=serializer.validated_data["input"],
            contact_id=serializer.validated_data.get("contact_id"),
            idempotency_key=key,
        )
        if created:
            execution = selectors.without_steps_yet(execution)
        else:
            execution = selectors.with_steps(Execution.objects.filter(pk=execution.pk)).get()
        # Commit now rather than once the response is rendered: the COMMIT counts the execution in the monthly
        # quota (usage.services), locking the workspace's usage row, which every execute call of the workspace
        # waits for, and it may refuse the start (429).
        with quota_refusals():
            self.commit_request_transaction()
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
        """The connector's executions, newest first, with their steps; `status` filters them."""
        connector = self.get_object()
        params = {"status": request.query_params.get("status")}
        queryset = selectors.filter_executions(
            selectors.with_steps(Execution.objects.filter(connector=connector)), params
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ExecutionSerializer(page, many=True).data)

    @extend_schema(responses={200: ConnectorStatsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request, *args, **kwargs):
        """The connector's execution totals, average and 95th percentile duration, and a daily series."""
        stats = selectors.connector_stats(self.get_object())
        return Response(ConnectorStatsSerializer(stats).data)
