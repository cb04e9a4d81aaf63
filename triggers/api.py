"""`/api/v1/connectors/{id}/triggers[/{trigger_id}]` (any member) and the public `POST /hooks/{token}`."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors.models import Connector
from core.throttling import WebhookTriggerThrottle
from triggers import hooks, services
from triggers.models import Trigger
from triggers.serializers import (
    HookAcceptedSerializer,
    TriggerCreatedSerializer,
    TriggerSerializer,
    TriggerUpdateSerializer,
    TriggerWriteSerializer,
)
from workspaces.scoping import WorkspaceScopedViewSet

CONNECTOR_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The connector's id.")
TRIGGER_ID = OpenApiParameter("trigger_id", str, OpenApiParameter.PATH, description="The trigger's id.")


@extend_schema_view(
    list=extend_schema(summary="The connector's triggers", parameters=[CONNECTOR_ID]),
    retrieve=extend_schema(summary="One trigger", parameters=[CONNECTOR_ID, TRIGGER_ID]),
    destroy=extend_schema(summary="Delete a trigger", parameters=[CONNECTOR_ID, TRIGGER_ID], responses={204: None}),
)
@extend_schema(tags=["triggers"])
class TriggerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    serializer_class = TriggerSerializer
    lookup_url_kwarg = "trigger_id"

    def get_unscoped_queryset(self):
        return Trigger.objects.filter(connector_id=self.kwargs.get("id"))

    def _connector(self) -> Connector:
        connector = Connector.objects.filter(pk=self.kwargs["id"], workspace=self.request.workspace).first()
        if connector is None:
            raise Http404
        return connector

    def list(self, request, *args, **kwargs):
        self._connector()
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Add a webhook or schedule trigger",
        parameters=[CONNECTOR_ID],
        request=TriggerWriteSerializer,
        responses={201: OpenApiResponse(TriggerCreatedSerializer, description="`signing_secret` appears only here.")},
    )
    def create(self, request, *args, **kwargs):
        connector = self._connector()
        serializer = TriggerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        trigger, secret = services.trigger_create(connector=connector, data=serializer.validated_data)
        data = TriggerCreatedSerializer(trigger, context={"request": request}).data
        if secret is None:
            data.pop("signing_secret", None)
        else:
            data["signing_secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a trigger",
        parameters=[CONNECTOR_ID, TRIGGER_ID],
        request=TriggerUpdateSerializer,
        responses={200: TriggerSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        trigger = self.get_object()
        serializer = TriggerUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        trigger = services.trigger_update(trigger=trigger, data=serializer.validated_data)
        return Response(TriggerSerializer(trigger, context={"request": request}).data)

    def destroy(self, request, *args, **kwargs):
        services.trigger_delete(trigger=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["triggers"],
    summary="Start an execution from an inbound webhook",
    description=(
        "No authentication but the token in the URL (and, with `require_signature`, the Standard Webhooks "
        "headers). A JSON object body is merged over the trigger's input; any other JSON value is placed "
        "under `body`. A repeated `webhook-id` within 24 hours answers 200 with the first execution."
    ),
    request={"application/json": {"type": "object", "additionalProperties": True}},
    parameters=[
        OpenApiParameter("token", str, OpenApiParameter.PATH),
        OpenApiParameter("webhook-id", str, OpenApiParameter.HEADER, required=False),
        OpenApiParameter("webhook-timestamp", str, OpenApiParameter.HEADER, required=False),
        OpenApiParameter("webhook-signature", str, OpenApiParameter.HEADER, required=False),
    ],
    responses={202: HookAcceptedSerializer, 200: HookAcceptedSerializer},
)
class HookView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [WebhookTriggerThrottle]

    def post(self, request, token: str):
        headers = {name.lower(): value for name, value in request.headers.items()}
        execution, created = hooks.hook_receive(token=token, body=request.body, headers=headers)
        return Response(
            {"execution_id": str(execution.pk)}, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )

    def get_authenticate_header(self, request) -> str:
        return 'Webhook-Signature realm="hooks"'  # a 401 (bad signature) stays a 401
