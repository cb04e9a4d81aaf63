"""The credentials API (docs/api.md §9): any member lists and checks, owners and admins store and delete.

Nothing here reads or returns a value: listing does not even load the ciphertext.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from credentials import services
from credentials.models import Credential
from credentials.serializers import CredentialCheckSerializer, CredentialSerializer, CredentialWriteSerializer
from workspaces.scoping import WorkspaceScopedViewSet

SERVICE_NAME_PARAMETER = OpenApiParameter(
    "service_name", str, OpenApiParameter.PATH, description="The credential's service name."
)


@extend_schema_view(
    list=extend_schema(
        summary="List the workspace's credentials",
        description="Service and field names with dates; values are never returned.",
    ),
    retrieve=extend_schema(summary="One credential's service and field names", parameters=[SERVICE_NAME_PARAMETER]),
)
@extend_schema(tags=["credentials"])
class CredentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    serializer_class = CredentialSerializer
    lookup_field = "service_name"
    manager_actions = frozenset({"create", "destroy"})

    def get_unscoped_queryset(self):
        return Credential.objects.defer("ciphertext", "token_ciphertext")

    @extend_schema(
        summary="Store or replace a credential",
        description=(
            "Encrypts the values (AES-256-GCM, bound to the workspace and service name). Owner or admin "
            "only. 201 when the service had no credential, 200 when it replaces the existing one."
        ),
        request=CredentialWriteSerializer,
        responses={
            201: OpenApiResponse(CredentialSerializer, description="Stored."),
            200: OpenApiResponse(CredentialSerializer, description="Replaced the existing credential."),
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = CredentialWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credential, created = services.credential_upsert(
            workspace=request.workspace,
            service_name=serializer.validated_data["service_name"],
            fields=serializer.validated_data["credentials"],
            type=serializer.validated_data["type"],
            rate_limit=serializer.validated_data["rate_limit"],
        )
        return Response(
            CredentialSerializer(credential).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Delete a credential",
        description="Owner or admin only. 404 when the workspace has no credential for the service.",
        parameters=[SERVICE_NAME_PARAMETER],
        responses={204: None},
    )
    def destroy(self, request, service_name: str, *args, **kwargs):
        if not services.credential_delete(workspace=request.workspace, service_name=service_name):
            raise exceptions.NotFound("The workspace has no credential for this service.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Whether the workspace has a credential for a service",
        parameters=[SERVICE_NAME_PARAMETER],
        responses=CredentialCheckSerializer,
    )
    def check(self, request, service_name: str, *args, **kwargs):
        exists = self.get_queryset().filter(service_name=service_name).exists()
        return Response(CredentialCheckSerializer({"service_name": service_name, "exists": exists}).data)
