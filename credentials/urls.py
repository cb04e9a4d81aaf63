"""Routes of this app, mounted under /api/v1/ by config.urls; each works with and without a trailing slash."""

from django.urls import re_path

from credentials.api import CredentialViewSet

urlpatterns = [
    re_path(
        r"^workspace/credentials/?$",
        CredentialViewSet.as_view({"get": "list", "post": "create"}),
        name="credential-list",
    ),
    re_path(
        r"^workspace/credentials/check/(?P<service_name>[^/]+)/?$",
        CredentialViewSet.as_view({"get": "check"}),
        name="credential-check",
    ),
    re_path(
        r"^workspace/credentials/(?P<service_name>[^/]+)/?$",
        CredentialViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="credential-detail",
    ),
]
