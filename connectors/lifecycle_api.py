"""The connector lifecycle endpoints (docs/api.md §14: versions, test runs, template updates, export, import):
a mixin of ConnectorViewSet, so every route is scoped to the request's workspace like the rest of it."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from connectors import portable, selectors, services
from connectors.models import DEFINITION_FIELDS
from connectors.serializers import (
    ConnectorSerializer,
    ConnectorVersionSerializer,
    ConnectorWithMissingCredentialsSerializer,
    DefinitionTestRequestSerializer,
    ExportDocumentSerializer,
    TestRequestSerializer,
    TestRunSerializer,
)
from executions import trial
from templates_market.services import connector_update_from_template
from workspaces.models import User

TEST_ACTIONS = frozenset({"test", "test_definition"})
VERSION_NUMBER = r"(?P<number>[0-9]{1,9})"
VERSION_PARAMETER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="A version number")
# A definition sent to POST /connectors/test may leave out the name: it is never saved.
UNSAVED_NAME = "Test run"


def actor(request) -> User | None:
    """The user a change is recorded as made by (None for a caller that is not a user)."""
    return request.user if isinstance(request.user, User) else None


class ConnectorLifecycleMixin:
    """Versions (list, detail, restore), test runs, update from template, export and import."""

    @extend_schema(responses={200: ConnectorVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, *args, **kwargs):
        """Every version of the connector, the current one included, newest first."""
        page = self.paginate_queryset(selectors.connector_versions(self.get_object()))
        return self.get_paginated_response(ConnectorVersionSerializer(page, many=True).data)

    @extend_schema(
        parameters=[VERSION_PARAMETER],
        responses={200: ConnectorVersionSerializer, 404: OpenApiResponse(description="No such version")},
    )
    @action(detail=True, methods=["get"], url_path=f"versions/{VERSION_NUMBER}", url_name="version")
    def version_detail(self, request, *args, number: str, **kwargs):
        """One version of the connector; 404 for a number it never had."""
        return Response(ConnectorVersionSerializer(self._version(number)).data)

    @extend_schema(
        request=None,
        parameters=[VERSION_PARAMETER],
        responses={
            200: ConnectorSerializer,
            404: OpenApiResponse(description="No such version"),
            409: OpenApiResponse(description="That version no longer passes validation"),
        },
    )
    @action(detail=True, methods=["post"], url_path=f"versions/{VERSION_NUMBER}/restore", url_name="restore")
    def restore(self, request, *args, number: str, **kwargs):
        """Makes that version's definition current, as a new version."""
        connector = services.connector_restore(
            connector=self.get_object(), version=self._version(number), user=actor(request)
        )
        return Response(ConnectorSerializer(connector).data)

    def _version(self, number: str):
        version = selectors.connector_version(self.get_object(), int(number))
        if version is None:
            raise Http404("No such version of this connector.")
        return version

    @extend_schema(
        request=TestRequestSerializer,
        responses={
            200: TestRunSerializer,
            400: OpenApiResponse(description="Input that fails input_schema, or a contact of another workspace"),
            429: OpenApiResponse(description="Too many test runs (per user)"),
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, *args, **kwargs):
        """Runs the saved definition now and answers with the outcome; nothing is recorded or changed."""
        connector = self.get_object()
        serializer = TestRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._test_response(connector.definition, serializer.validated_data)

    @extend_schema(
        operation_id="connectors_test_definition",
        request=DefinitionTestRequestSerializer,
        responses={
            200: TestRunSerializer,
            400: OpenApiResponse(description="An invalid definition (the errors saving it would give) or input"),
            429: OpenApiResponse(description="Too many test runs (per user)"),
        },
    )
    @action(detail=False, methods=["post"], url_path="test", url_name="test-definition")
    def test_definition(self, request, *args, **kwargs):
        """Runs an unsaved definition now; it is validated exactly as when saving (400 with the same errors)."""
        serializer = DefinitionTestRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        definition = serializer.validated_data["definition"]
        if isinstance(definition, dict):
            definition = {"name": UNSAVED_NAME, **definition}
        validated = ConnectorSerializer(data=definition)
        validated.is_valid(raise_exception=True)
        return self._test_response(
            {name: validated.validated_data[name] for name in DEFINITION_FIELDS},
            serializer.validated_data,
        )

    def _test_response(self, definition: dict, request_data: dict) -> Response:
        result = trial.run_test(
            workspace=self.request.workspace,
            definition=definition,
            input=request_data["input"],
            contact_id=request_data.get("contact_id"),
        )
        return Response(TestRunSerializer(result).data)

    @extend_schema(
        request=None,
        responses={
            200: ConnectorWithMissingCredentialsSerializer,
            409: OpenApiResponse(description="No template, template no longer public, or already up to date"),
        },
    )
    @action(detail=True, methods=["post"], url_path="update-from-template", url_name="update-from-template")
    def update_from_template(self, request, *args, **kwargs):
        """Gives the connector its template's current definition as a new version."""
        connector, missing = connector_update_from_template(connector=self.get_object(), user=actor(request))
        return Response({**ConnectorSerializer(connector).data, "missing_credentials": missing})

    @extend_schema(responses={200: ExportDocumentSerializer})
    @action(detail=True, methods=["get"])
    def export(self, request, *args, **kwargs):
        """A portable document of the connector: no ids, no workspace, no counters, no secrets."""
        return Response(portable.export_document(self.get_object()))

    @extend_schema(
        request=ExportDocumentSerializer,
        responses={
            201: ConnectorWithMissingCredentialsSerializer,
            400: OpenApiResponse(description="Another format, unknown or secret-looking fields, invalid definition"),
        },
    )
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_(self, request, *args, **kwargs):
        """Creates a connector from an exported document."""
        serializer = ExportDocumentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connector, missing = services.connector_import(
            workspace=request.workspace, document=serializer.validated_data, user=actor(request)
        )
        body = {**ConnectorSerializer(connector).data, "missing_credentials": missing}
        return Response(body, status=status.HTTP_201_CREATED)
