"""The one place where a request's workspace is resolved and querysets are scoped to it (docs/api.md §3).

Every workspace-scoped viewset inherits `WorkspaceScopedViewSet`. It resolves the active workspace once per
request (header, or the caller's only workspace), exposes it as `request.workspace` / `request.membership`, and
builds `get_queryset()` itself from `get_unscoped_queryset()`, filtered by the workspace. Subclasses may not
override `get_queryset`, so a new endpoint cannot forget the filter.
"""

import uuid
from contextlib import ExitStack

from django.db.models import Model, QuerySet
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, viewsets

from core import rls, rows
from core.throttling import ThrottledViewMixin
from workspaces import access
from workspaces.models import MANAGING_ROLES, ApiKey, Membership

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
    requested = workspace_id or request.headers.get(WORKSPACE_HEADER, "").strip()
    if isinstance(request.auth, ApiKey):
        return _key_membership(request.auth, requested)

    def memberships() -> QuerySet[Membership]:  # built only when the caller is not in the process's cache
        return Membership.objects.select_related("workspace").filter(user=request.user)

    if requested:
        try:
            requested_uuid = uuid.UUID(requested)
        except ValueError:
            raise WorkspaceRequired(f"{WORKSPACE_HEADER} must be a workspace id (a UUID).") from None
        membership = access.membership(
            request.user, requested_uuid, lambda: memberships().filter(workspace_id=requested_uuid).first()
        )
        if membership is None:
            raise WorkspaceForbidden()
        return membership
    found: list[Membership] = []

    def only_one() -> Membership | None:
        found.extend(memberships()[:2])
        return found[0] if len(found) == 1 else None

    membership = access.membership(request.user, None, only_one)
    if membership is None:
        raise WorkspaceRequired(
            f"You belong to several workspaces; choose one with the {WORKSPACE_HEADER} header."
            if found
            else "You do not belong to any workspace."
        )
    return membership


def _key_membership(api_key: ApiKey, requested: str) -> Membership:
    """An API key is a member of its own workspace only (an unsaved Membership carrying its role)."""
    if requested:
        try:
            requested_uuid = uuid.UUID(requested)
        except ValueError:
            raise WorkspaceRequired(f"{WORKSPACE_HEADER} must be a workspace id (a UUID).") from None
        if requested_uuid != api_key.workspace_id:
            raise WorkspaceForbidden("This API key belongs to another workspace.")
    return Membership(workspace=api_key.workspace, role=api_key.role)


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


class WorkspaceScopedViewSet(ThrottledViewMixin, viewsets.GenericViewSet):
    """Base of every viewset over one workspace's data.

    Set `workspace_field` to the lookup that leads from the model to its workspace, and list in
    `manager_actions` the actions that need an owner or admin.
    """

    workspace_field = "workspace"
    manager_actions: frozenset[str] = frozenset()
    # Whether API keys may call this viewset (workspaces.authentication); people-only endpoints set False.
    api_key_access = True
    schema = WorkspaceSchema()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must implement get_unscoped_queryset(), not get_queryset().")

    def get_unscoped_queryset(self) -> QuerySet:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        # Once the caller is authenticated, the rest of the request runs in one transaction in which the
        # database only shows the workspace's rows (PostgreSQL row-level security, core.rls). It opens in
        # check_permissions, so a refused anonymous request never touches the database, and ends here.
        with ExitStack() as self._request_transaction:
            return super().dispatch(request, *args, **kwargs)

    def check_permissions(self, request):
        super().check_permissions(request)
        transaction_stack = getattr(self, "_request_transaction", None)
        if transaction_stack is not None and not getattr(self, "_in_request_transaction", False):
            transaction_stack.enter_context(rls.request_transaction())
            self._in_request_transaction = True
        membership = resolve_membership(request, self.kwargs.get("workspace_id"))
        request.membership = membership
        request.workspace = membership.workspace
        if transaction_stack is not None:
            rls.enter_workspace(membership.workspace_id)
        if self.action in self.manager_actions and membership.role not in MANAGING_ROLES:
            raise exceptions.PermissionDenied("This needs the owner or admin role in the workspace.")

    def commit_request_transaction(self) -> None:
        """Ends the request's transaction now, committing it; the rest of the request must not use the
        database. For a hot path whose last write locks a row that other requests wait for: the lock is
        released before the response is built, not after."""
        self._request_transaction.close()

    def get_scoped_object(self, model: type[Model]) -> Model:
        """The object at the path, scoped as `get_queryset()` scopes it, read with one prepared statement
        (core.rows) instead of an ORM query: for hot paths (execute). `workspace_field` must be the model's
        own foreign key to the workspace; related objects are not loaded."""
        try:
            pk = uuid.UUID(str(self.kwargs[self.lookup_url_kwarg or self.lookup_field]))
        except ValueError:
            raise Http404 from None
        found = rows.select_one(model, pk=pk, **{f"{self.workspace_field}_id": self.request.workspace.pk})
        if found is None:
            raise Http404
        self.check_object_permissions(self.request, found)
        return found

    def get_queryset(self) -> QuerySet:
        queryset = self.get_unscoped_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return queryset.filter(**{self.workspace_field: self.request.workspace})
