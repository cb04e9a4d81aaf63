"""Routes of this app, mounted under /api/v1/ by config.urls (both slash forms)."""

from django.urls import re_path

from batches.api import BatchViewSet

UUID = r"[0-9a-fA-F-]{36}"

urlpatterns = [
    re_path(
        rf"^connectors/(?P<id>{UUID})/execute-batch/?$", BatchViewSet.as_view({"post": "create"}), name="batch-create"
    ),
    re_path(rf"^batches/(?P<pk>{UUID})/?$", BatchViewSet.as_view({"get": "retrieve"}), name="batch-detail"),
]
