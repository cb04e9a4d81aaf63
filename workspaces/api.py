"""Auth, workspaces and members endpoints (docs/api.md §2, §3). Views parse and present; services decide."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from core.throttling import AuthRateThrottle
from workspaces import login_brake, services, tokens
from workspaces.authentication import ApiKeyAuthentication
from workspaces.models import Membership, Workspace
from workspaces.scoping import WorkspaceScopedViewSet
from workspaces.serializers import (
    EmailTokenObtainSerializer,
    MemberAddSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    PasswordChangeSerializer,
    RefreshTokenSerializer,
    RegisteredUserSerializer,
    RegisterSerializer,
    RotatingRefreshSerializer,
    TokenPairSerializer,
    WorkspaceSerializer,
)


class RegisterView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthRateThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredUserSerializer}, tags=["auth"])
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user, workspace = services.user_register(**serializer.validated_data)
        except services.EmailTaken:
            body = services.registration_decoy(**serializer.validated_data)
        else:
            body = {"id": user.id, "email": user.email, "workspace": {"id": workspace.id, "name": workspace.name}}
        return Response(RegisteredUserSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"], responses={200: TokenPairSerializer})
class TokenView(TokenObtainPairView):
    authentication_classes = [ApiKeyAuthentication]  # only to answer 403 to an API key
    serializer_class = EmailTokenObtainSerializer
    throttle_classes = [AuthRateThrottle]

    def post(self, request, *args, **kwargs):
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str):
            return super().post(request, *args, **kwargs)
        login_brake.check(request, email)
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            login_brake.failed(request, email)
            raise
        login_brake.succeeded(request, email)
        return response


@extend_schema(tags=["auth"], responses={200: TokenPairSerializer})
class TokenRefresh(TokenRefreshView):
    authentication_classes = [ApiKeyAuthentication]  # only to answer 403 to an API key
    serializer_class = RotatingRefreshSerializer
    throttle_classes = [AuthRateThrottle]


class LogoutView(APIView):
    @extend_schema(request=RefreshTokenSerializer, responses={205: None}, tags=["auth"])
    def post(self, request):
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token = RefreshToken(serializer.validated_data["refresh"])
        except TokenError:
            raise AuthenticationFailed("The refresh token is invalid or expired.", code="token_not_valid") from None
        if str(token.get("user_id")) != str(request.user.pk):
            raise AuthenticationFailed("The refresh token is invalid or expired.", code="token_not_valid")
        token.blacklist()
        tokens.revoke_access_tokens(user=request.user)  # the access tokens already issued stop working too
        return Response(status=status.HTTP_205_RESET_CONTENT)


class PasswordChangeView(APIView):
    throttle_classes = [AuthRateThrottle]

    @extend_schema(request=PasswordChangeSerializer, responses={204: None}, tags=["auth"])
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        services.password_change(user=request.user, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["workspaces"])
class WorkspaceViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's workspaces with their role in each; creating one makes the caller its owner."""

    serializer_class = WorkspaceSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Membership.objects.none()
        return (
            Membership.objects.filter(user=self.request.user)
            .select_related("workspace")
            .order_by("workspace__name", "workspace__created_at")
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = [{"id": m.workspace.id, "name": m.workspace.name, "role": m.role} for m in page]
        return self.get_paginated_response(WorkspaceSerializer(rows, many=True).data)

    def create(self, request, *args, **kwargs):
        serializer = WorkspaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace: Workspace = services.workspace_create(name=serializer.validated_data["name"], owner=request.user)
        body = {"id": workspace.id, "name": workspace.name, "role": "owner"}
        return Response(WorkspaceSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["workspaces"])
class MemberViewSet(
    mixins.ListModelMixin,
    WorkspaceScopedViewSet,
):
    """Members of the workspace named in the path; owners and admins manage them."""

    serializer_class = MemberSerializer
    api_key_access = False
    lookup_field = "user_id"
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_unscoped_queryset(self):
        return Membership.objects.select_related("user").order_by("created_at", "id")

    @extend_schema(request=MemberAddSerializer, responses={201: MemberSerializer, 200: MemberSerializer})
    def create(self, request, *args, **kwargs):
        serializer = MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change = services.member_add(actor=request.membership, **serializer.validated_data)
        return Response(
            MemberSerializer(change.membership).data,
            status=status.HTTP_201_CREATED if change.created else status.HTTP_200_OK,
        )

    @extend_schema(request=MemberRoleSerializer, responses={200: MemberSerializer})
    def partial_update(self, request, *args, **kwargs):
        serializer = MemberRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            membership = services.member_change_role(
                actor=request.membership, membership=self.get_object(), role=serializer.validated_data["role"]
            )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.member_remove(actor=request.membership, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
