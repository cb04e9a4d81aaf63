"""Routes of this app, mounted under /api/v1/ by config.urls (both slash forms)."""

from django.urls import re_path

from webhooks.api import WebhookEndpointViewSet

UUID = r"[0-9a-fA-F-]{36}"
BASE = r"^workspace/webhook-endpoints"

urlpatterns = [
    re_path(rf"{BASE}/?$", WebhookEndpointViewSet.as_view({"get": "list", "post": "create"}), name="webhook-list"),
    re_path(
        rf"{BASE}/(?P<pk>{UUID})/?$",
        WebhookEndpointViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="webhook-detail",
    ),
    re_path(
        rf"{BASE}/(?P<pk>{UUID})/deliveries/?$",
        WebhookEndpointViewSet.as_view({"get": "deliveries"}),
        name="webhook-deliveries",
    ),
    re_path(
        rf"{BASE}/(?P<pk>{UUID})/test/?$", WebhookEndpointViewSet.as_view({"post": "send_test"}), name="webhook-test"
    ),
]
