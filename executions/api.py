from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from executions import selectors, services
from executions.models import Execution
from executions.serializers import ExecutionSerializer
from workspaces.scoping import WorkspaceScopedViewSet

EXECUTION_FILTERS = [
    OpenApiParameter("status", str, enum=["queued", "running", "succeeded", "failed", "cancelled"]),
    OpenApiParameter("connector", str, description="Connector id"),
    OpenApiParameter("since", str, description="ISO 8601 time: executions created at or after it"),
]


@extend_schema_view(list=extend_schema(parameters=EXECUTION_FILTERS))
@extend_schema(tags=["executions"])
class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    serializer_class = ExecutionSerializer

    def get_unscoped_queryset(self):
        queryset = selectors.with_steps(Execution.objects.all())
        if self.action == "list":
            queryset = selectors.filter_executions(queryset, self.request.query_params)
        return queryset

    @extend_schema(request=None, responses={200: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        execution = services.execution_cancel(execution=self.get_object())
        return Response(ExecutionSerializer(execution).data)
