"""The template marketplace API (docs/api.md §10). Views parse and present; selectors read, services write.

Browsing, rating and staff writes need no workspace; installing copies into the caller's active workspace
(docs/api.md §3), so only `install` resolves one.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from connectors.serializers import ConnectorSerializer
from core.patching import patched
from templates_market import selectors, services
from templates_market.serializers import (
    ConnectorTemplateSerializer,
    RatingSummarySerializer,
    TemplateInstallResultSerializer,
    TemplateInstallSerializer,
    TemplateRateSerializer,
)
from workspaces.scoping import WORKSPACE_HEADER, resolve_membership

STAFF_ACTIONS = frozenset({"create", "partial_update", "destroy"})


class IsStaffForWrites(permissions.BasePermission):
    message = "Only SaaS staff can create, change or delete templates."

    def has_permission(self, request, view) -> bool:
        return view.action not in STAFF_ACTIONS or bool(request.user and request.user.is_staff)


def _bool_param(params, name: str) -> bool | None:
    if name not in params:
        return None
    try:
        return serializers.BooleanField().run_validation(params[name])
    except ValidationError as error:
        raise ValidationError({name: error.detail}) from None


WORKSPACE_PARAMETER = OpenApiParameter(
    WORKSPACE_HEADER,
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=False,
    description="Workspace to install into; optional when you belong to exactly one.",
)


@extend_schema_view(
    list=extend_schema(
        summary="Browse the template catalogue",
        description="Non-staff see public templates only.",
        parameters=[
            OpenApiParameter("search", str, description="Case-insensitive match in name, description or tags"),
            OpenApiParameter("category", str, description="Exact category (case-insensitive)"),
            OpenApiParameter("featured", bool),
            OpenApiParameter("official", bool),
            OpenApiParameter("ordering", str, enum=list(selectors.ORDERINGS), default=selectors.DEFAULT_ORDERING),
        ],
        responses={200: ConnectorTemplateSerializer(many=True)},
    ),
    retrieve=extend_schema(
        summary="One template",
        description="A private template is 404 to non-staff.",
        responses=ConnectorTemplateSerializer,
    ),
    create=extend_schema(
        summary="Create a template (staff)",
        request=ConnectorTemplateSerializer,
        responses={201: ConnectorTemplateSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a template (staff)",
        description="Fields not given keep their value; `definition` is replaced as a whole. Changing the "
        "definition or the required credentials bumps `version`.",
        request=ConnectorTemplateSerializer(partial=True),
        responses={200: ConnectorTemplateSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a template (staff)",
        description="Connectors installed from it keep working, unlinked.",
        responses={204: None},
    ),
)
@extend_schema(tags=["templates"])
class ConnectorTemplateViewSet(viewsets.GenericViewSet):
    serializer_class = ConnectorTemplateSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaffForWrites]
    filter_backends: list = []

    def get_queryset(self):
        return selectors.templates_visible_to(self.request.user)

    def list(self, request):
        params = request.query_params
        ordering = params.get("ordering", "").strip() or selectors.DEFAULT_ORDERING
        try:
            queryset = selectors.template_list(
                user=request.user,
                search=params.get("search", ""),
                category=params.get("category", ""),
                featured=_bool_param(params, "featured"),
                official=_bool_param(params, "official"),
                ordering=ordering,
            )
        except selectors.UnknownOrdering:
            raise ValidationError(
                {"ordering": [f"Unknown ordering {ordering!r}; use one of: {', '.join(selectors.ORDERINGS)}."]}
            ) from None
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ConnectorTemplateSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(ConnectorTemplateSerializer(self.get_object()).data)

    def create(self, request):
        serializer = ConnectorTemplateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.template_create(data=serializer.validated_data, author=request.user)
        return Response(ConnectorTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        template = self.get_object()
        serializer = ConnectorTemplateSerializer(
            template, data=patched(ConnectorTemplateSerializer(template).data, request.data)
        )
        serializer.is_valid(raise_exception=True)
        template = services.template_update(template=template, data=serializer.validated_data)
        return Response(ConnectorTemplateSerializer(template).data)

    def destroy(self, request, pk=None):
        services.template_delete(template=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Install a template into the active workspace",
        description="Creates a connector from the template's definition, named after the template "
        '(or `name`), made distinct with " (2)", " (3)"... when the workspace already has one of that name.',
        parameters=[WORKSPACE_PARAMETER],
        request=TemplateInstallSerializer,
        responses={
            201: TemplateInstallResultSerializer,
            400: OpenApiResponse(description="No active workspace could be chosen"),
            403: OpenApiResponse(description="Not a member of the workspace named by the header"),
        },
    )
    @action(detail=True, methods=["post"])
    def install(self, request, pk=None):
        membership = resolve_membership(request)
        template = self.get_object()
        serializer = TemplateInstallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connector, missing = services.template_install(
            template=template,
            workspace=membership.workspace,
            name=serializer.validated_data.get("name"),
            user=request.user,
        )
        body = {"connector": ConnectorSerializer(connector).data, "missing_credentials": missing}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rate a template",
        description="One rating per user; rating again replaces the earlier rating and review.",
        request=TemplateRateSerializer,
        responses={200: RatingSummarySerializer},
    )
    @action(detail=True, methods=["post"])
    def rate(self, request, pk=None):
        template = self.get_object()
        serializer = TemplateRateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.template_rate(template=template, user=request.user, **serializer.validated_data)
        return Response(RatingSummarySerializer(template).data)
