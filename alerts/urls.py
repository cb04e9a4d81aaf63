from django.urls import re_path

from alerts.api import AlertSettingsViewSet

urlpatterns = [
    re_path(
        r"^workspace/alerts/?$",
        AlertSettingsViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="workspace-alerts",
    ),
]
