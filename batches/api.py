"""`POST /api/v1/connectors/{id}/execute-batch` and `GET /api/v1/batches/{id}` (any member)."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from batches import selectors, services
from batches.models import Batch
from batches.serializers import BatchAcceptedSerializer, BatchRequestSerializer, BatchSerializer
from connectors.models import Connector
from core.throttling import ExecuteRateThrottle
from workspaces.scoping import WorkspaceScopedViewSet

ID = OpenApiParameter("id", str, OpenApiParameter.PATH)


@extend_schema(tags=["executions"])
class BatchViewSet(WorkspaceScopedViewSet):
    serializer_class = BatchSerializer

    def get_unscoped_queryset(self):
        return Batch.objects.all()

    def get_throttles(self):
        if self.action == "create":
            return [*super().get_throttles(), ExecuteRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="Queue up to 1000 executions of the connector at once",
        description="All items are validated first; if any is invalid nothing is created (400, errors by index).",
        parameters=[ID],
        request=BatchRequestSerializer,
        responses={202: BatchAcceptedSerializer},
    )
    def create(self, request, *args, **kwargs):
        connector = Connector.objects.filter(pk=kwargs["id"], workspace=request.workspace).first()
        if connector is None:
            raise Http404
        serializer = BatchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        batch, execution_ids = services.batch_create(connector=connector, items=serializer.validated_data["items"])
        body = {"id": batch.id, "count": batch.count, "executions": execution_ids}
        return Response(BatchAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="A batch's progress", parameters=[ID], responses={200: BatchSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(BatchSerializer(selectors.batch_progress(self.get_object())).data)
