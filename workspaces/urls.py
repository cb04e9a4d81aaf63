"""Workspace-level routes of this app, mounted under /api/v1/ by config.urls (both slash forms)."""

from django.urls import re_path

from workspaces.api_keys_api import ApiKeyViewSet

urlpatterns = [
    re_path(r"^workspace/api-keys/?$", ApiKeyViewSet.as_view({"get": "list", "post": "create"}), name="api-key-list"),
    re_path(
        r"^workspace/api-keys/(?P<pk>[0-9a-fA-F-]{36})/?$",
        ApiKeyViewSet.as_view({"delete": "destroy"}),
        name="api-key-detail",
    ),
]
