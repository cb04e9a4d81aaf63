"""The one place where a request's workspace is resolved and querysets are scoped to it (CONTRACT §3).

Every workspace-scoped viewset inherits `WorkspaceScopedViewSet`. It resolves the active workspace once per
request (header, or the caller's only workspace), exposes it as `request.workspace` / `request.membership`, and
builds `get_queryset()` itself from `get_unscoped_queryset()`, filtered by the workspace. Subclasses may not
override `get_queryset`, so a new endpoint cannot forget the filter.
"""

import uuid

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, viewsets

from core import rls
from workspaces.models import MANAGING_ROLES, Membership

WORKSPACE_HEADER = "X-Workspace-ID"


class WorkspaceRequired(exceptions.APIException):
    status_code = 400
    default_code = "workspace_required"
    default_detail = f"Choose a workspace with the {WORKSPACE_HEADER} header."


class WorkspaceForbidden(exceptions.PermissionDenied):
    default_detail = "You are not a member of this workspace."


def resolve_membership(request, workspace_id: str | None = None) -> Membership:
    """The caller's membership in the requested workspace.

    `workspace_id` (from the URL) wins over the header. Raises WorkspaceRequired (400) when no workspace is
    named and the caller has not exactly one, and WorkspaceForbidden (403) for a workspace the caller is not a
    member of, whether or not it exists.
    """
    memberships = Membership.objects.select_related("workspace").filter(user=request.user)
    requested = workspace_id or request.headers.get(WORKSPACE_HEADER, "").strip()
    if requested:
        try:
            requested_uuid = uuid.UUID(requested)
        except ValueError:
            raise WorkspaceRequired(f"{WORKSPACE_HEADER} must be a workspace id (a UUID).") from None
        membership = memberships.filter(workspace_id=requested_uuid).first()
        if membership is None:
            raise WorkspaceForbidden()
        return membership
    found = list(memberships[:2])
    if len(found) != 1:
        raise WorkspaceRequired(
            f"You belong to several workspaces; choose one with the {WORKSPACE_HEADER} header."
            if found
            else "You do not belong to any workspace."
        )
    return found[0]


class WorkspaceSchema(AutoSchema):
    """Documents the workspace header on every workspace-scoped operation."""

    def get_override_parameters(self):
        header = OpenApiParameter(
            WORKSPACE_HEADER,
            OpenApiTypes.UUID,
            OpenApiParameter.HEADER,
            required=False,
            description="Active workspace; optional when you belong to exactly one.",
        )
        return [header, *super().get_override_parameters()]


class WorkspaceScopedViewSet(viewsets.GenericViewSet):
    """Base of every viewset over one workspace's data.

    Set `workspace_field` to the lookup that leads from the model to its workspace, and list in
    `manager_actions` the actions that need an owner or admin.
    """

    workspace_field = "workspace"
    manager_actions: frozenset[str] = frozenset()
    schema = WorkspaceSchema()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must implement get_unscoped_queryset(), not get_queryset().")

    def get_unscoped_queryset(self) -> QuerySet:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        # One transaction per request: once the workspace is resolved, the database only shows that
        # workspace's rows (PostgreSQL row-level security, core.rls), until the transaction ends.
        with rls.request_transaction():
            return super().dispatch(request, *args, **kwargs)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        transaction.set_rollback(True)  # an error answer leaves nothing half-written
        return response

    def check_permissions(self, request):
        super().check_permissions(request)
        membership = resolve_membership(request, self.kwargs.get("workspace_id"))
        request.membership = membership
        request.workspace = membership.workspace
        rls.enter_workspace(membership.workspace_id)
        if self.action in self.manager_actions and membership.role not in MANAGING_ROLES:
            raise exceptions.PermissionDenied("This needs the owner or admin role in the workspace.")

    def get_queryset(self) -> QuerySet:
        queryset = self.get_unscoped_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return queryset.filter(**{self.workspace_field: self.request.workspace})
