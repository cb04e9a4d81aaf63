"""Routes of this app: the trigger API under /api/v1/ (both slash forms) and the public hook URL."""

from django.urls import re_path

from triggers.api import HookView, TriggerViewSet

UUID = r"[0-9a-fA-F-]{36}"

api_urlpatterns = [
    re_path(
        rf"^connectors/(?P<id>{UUID})/triggers/?$",
        TriggerViewSet.as_view({"get": "list", "post": "create"}),
        name="trigger-list",
    ),
    re_path(
        rf"^connectors/(?P<id>{UUID})/triggers/(?P<trigger_id>{UUID})/?$",
        TriggerViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="trigger-detail",
    ),
]

hook_urlpatterns = [re_path(r"^hooks/(?P<token>[A-Za-z0-9_-]{1,128})/?$", HookView.as_view(), name="hook")]
