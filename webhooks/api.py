"""`/api/v1/workspace/webhook-endpoints`: any member reads; owners and admins write and send test events."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWriteSerializer,
)
from workspaces.scoping import WorkspaceScopedViewSet


class WebhookEndpointUpdateSerializer(WebhookEndpointWriteSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="The workspace's webhook endpoints"),
    retrieve=extend_schema(summary="One webhook endpoint"),
    destroy=extend_schema(summary="Delete a webhook endpoint", responses={204: None}),
)
@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    serializer_class = WebhookEndpointSerializer
    manager_actions = frozenset({"create", "partial_update", "destroy", "send_test"})

    def get_unscoped_queryset(self):
        return WebhookEndpoint.objects.select_related("workspace")

    @extend_schema(
        summary="Add a webhook endpoint",
        request=WebhookEndpointWriteSerializer,
        responses={201: OpenApiResponse(WebhookEndpointCreatedSerializer, description="`secret` appears only here.")},
    )
    def create(self, request, *args, **kwargs):
        serializer = WebhookEndpointWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(workspace=request.workspace, data=serializer.validated_data)
        endpoint.secret = secret  # the plaintext, for this response only (the row keeps the ciphertext)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a webhook endpoint", request=WebhookEndpointUpdateSerializer)
    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        serializer = WebhookEndpointUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, data=serializer.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request, *args, **kwargs):
        services.endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The endpoint's deliveries, newest first", responses={200: WebhookDeliverySerializer(many=True)}
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, *args, **kwargs):
        endpoint = self.get_object()
        queryset = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "id")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send a signed `webhook.test` event to the endpoint",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, *args, **kwargs):
        delivery = services.endpoint_send_test(endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
