"""`/api/v1/workspace/api-keys`: owners and admins issue, list and revoke the workspace's API keys."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from workspaces import api_keys
from workspaces.models import ApiKey, Role
from workspaces.scoping import WorkspaceScopedViewSet


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown in this response only.")

    class Meta(ApiKeySerializer.Meta):
        fields = ["id", "name", "prefix", "key", "role", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    role = serializers.ChoiceField(choices=[Role.MEMBER, Role.ADMIN], default=Role.MEMBER)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


@extend_schema_view(
    list=extend_schema(summary="The workspace's live API keys (never the keys themselves)"),
    destroy=extend_schema(summary="Revoke an API key: it stops working at once", responses={204: None}),
)
@extend_schema(tags=["api-keys"])
class ApiKeyViewSet(mixins.ListModelMixin, WorkspaceScopedViewSet):
    serializer_class = ApiKeySerializer
    api_key_access = False
    manager_actions = frozenset({"list", "create", "destroy"})

    def get_unscoped_queryset(self):
        return ApiKey.objects.filter(revoked_at__isnull=True)

    @extend_schema(
        summary="Issue an API key",
        request=ApiKeyCreateSerializer,
        responses={201: OpenApiResponse(ApiKeyCreatedSerializer, description="`key` appears only here.")},
    )
    def create(self, request, *args, **kwargs):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, plaintext = api_keys.api_key_create(
            workspace=request.workspace, created_by=request.user, **serializer.validated_data
        )
        api_key.key = plaintext
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        api_keys.api_key_revoke(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
