from django.urls import re_path

from usage.api import AdminWorkspaceDetailView, UsageViewSet

urlpatterns = [
    re_path(r"^workspace/usage/?$", UsageViewSet.as_view({"get": "retrieve"}), name="workspace-usage"),
    re_path(
        r"^admin/workspaces/(?P<workspace_id>[^/]+)/?$", AdminWorkspaceDetailView.as_view(), name="admin-workspace"
    ),
]
