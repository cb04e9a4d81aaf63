from django.urls import re_path

from audit.api import AuditLogViewSet

urlpatterns = [
    re_path(r"^workspace/audit-log/?$", AuditLogViewSet.as_view({"get": "list"}), name="audit-log"),
]
